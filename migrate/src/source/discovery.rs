//! Discovery: which files of a directory are migrations (the file-name rule), reading them,
//! and every problem found on the way, reported together before anything touches the database.

use super::parse::parse_file;
use super::{Migration, MigrationSet};
use sha2::{Digest, Sha384};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub file: PathBuf,
    /// 0 when the problem is about the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

/// Why a directory could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The directory does not exist or is not readable.
    Dir { dir: PathBuf, reason: String },
    /// No `NNN_description.sql` file at the top level.
    Empty { dir: PathBuf },
    /// Format errors, all of them (and the warnings found on the way).
    Format(Vec<FormatError>, Vec<String>),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Dir { dir, reason } => write!(
                f,
                "migration directory `{}` {reason}; pass --dir (or MIGRATE_DIR) with the directory holding the NNN_description.sql files",
                dir.display()
            ),
            LoadError::Empty { dir } => write!(
                f,
                "migration directory `{}` holds no migrations (files named NNN_description.sql at its top level); check --dir / MIGRATE_DIR",
                dir.display()
            ),
            LoadError::Format(errs, warnings) => {
                write!(
                    f,
                    "{} problem{} in the migration files (nothing was run):",
                    errs.len(),
                    if errs.len() == 1 { "" } else { "s" }
                )?;
                for e in errs {
                    write!(f, "\n  {e}")?;
                }
                for w in warnings {
                    write!(f, "\n  warning: {w}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A file that is to be a migration: (version, file name, description, path).
struct Candidate {
    version: i64,
    name: String,
    description: String,
    path: PathBuf,
}

/// Reads `dir`: finds the migration files, parses each one, and collects every problem.
pub(super) fn load(
    dir: PathBuf,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<MigrationSet, LoadError> {
    let mut errors = Vec::new();
    let mut files = find(&dir, &mut errors)?;
    if files.is_empty() && errors.is_empty() {
        return Err(LoadError::Empty { dir });
    }
    files.sort_by(|a, b| (a.version, &a.name).cmp(&(b.version, &b.name)));
    check_unique_versions(&files, &mut errors);
    let mut warnings = Vec::new();
    let mut migrations = Vec::new();
    for file in files {
        if let Some(m) = read(file, env, &mut errors, &mut warnings) {
            migrations.push(m);
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Format(errors, warnings));
    }
    Ok(MigrationSet {
        dir,
        migrations,
        warnings,
    })
}

/// The top-level files that are migrations by the name rule; a file that looks like one but
/// cannot be used is an error naming it.
fn find(dir: &Path, errors: &mut Vec<FormatError>) -> Result<Vec<Candidate>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Dir {
        dir: dir.to_path_buf(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist".to_string(),
            _ => format!("cannot be read ({e})"),
        },
    })?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let raw = entry.file_name();
        if !looks_like_migration(raw.as_encoded_bytes()) {
            continue;
        }
        let path = entry.path();
        let refused = |message: String| FormatError {
            file: dir.join(show_name(raw.as_encoded_bytes())),
            line: 0,
            message,
        };
        match candidate(&path, raw.to_str()) {
            Ok(Some(c)) => files.push(c),
            Ok(None) => {}
            Err(message) => errors.push(refused(message)),
        }
    }
    Ok(files)
}

/// A file whose name looks like a migration: the migration it is, None for a directory or a
/// name the rule ignores, or why it cannot be one.
fn candidate(path: &Path, name: Option<&str>) -> Result<Option<Candidate>, String> {
    // Follows symlinks: a link to a file counts, a dangling one is an error.
    match std::fs::metadata(path) {
        Ok(md) if md.is_dir() => return Ok(None),
        Ok(md) if !md.is_file() => {
            return Err("looks like a migration but is not a regular file".into())
        }
        Err(e) => {
            return Err(if path.symlink_metadata().is_ok() {
                "is a symbolic link to a missing file".to_string()
            } else {
                format!("cannot be read: {e}")
            })
        }
        Ok(_) => {}
    }
    let Some(name) = name else {
        return Err("the file name is not valid UTF-8 (shown with \\x escapes); rename it".into());
    };
    if !name.ends_with(".sql") {
        return Err(format!(
            "ends in `{}`: migration files end in lowercase `.sql`; rename it",
            &name[name.len() - 4..]
        ));
    }
    match parse_name(name) {
        Name::Migration(version, description) => Ok(Some(Candidate {
            version,
            name: name.to_string(),
            description,
            path: path.to_path_buf(),
        })),
        Name::Invalid(why) => Err(format!("looks like a migration but {why}")),
        Name::Other => Ok(None),
    }
}

/// Two files with one version: an error on the second (`files` is sorted).
fn check_unique_versions(files: &[Candidate], errors: &mut Vec<FormatError>) {
    for w in files.windows(2) {
        if w[0].version == w[1].version {
            errors.push(FormatError {
                file: w[1].path.clone(),
                line: 0,
                message: format!(
                    "version {} is used by two files: `{}` and `{}`; renumber one of them",
                    w[0].version, w[0].name, w[1].name
                ),
            });
        }
    }
}

/// Reads and parses one file; its problems go to `errors`, its warnings to `warnings`.
fn read(
    file: Candidate,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<FormatError>,
    warnings: &mut Vec<String>,
) -> Option<Migration> {
    let path = file.path;
    let whole_file = |message: String| FormatError {
        file: path.clone(),
        line: 0,
        message,
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                errors.push(whole_file("is not valid UTF-8".into()));
                return None;
            }
        },
        Err(e) => {
            errors.push(whole_file(format!("cannot be read: {e}")));
            return None;
        }
    };
    match parse_file(&text, env) {
        Ok(p) => {
            for (line, w) in p.warnings {
                warnings.push(format!("{}:{line}: {w}", path.display()));
            }
            let checksum = Sha384::digest(p.up_source.as_bytes()).to_vec();
            Some(Migration {
                version: file.version,
                name: file.name,
                description: file.description,
                path,
                format: p.format,
                no_tx: p.no_tx,
                up: p.up,
                down: p.down,
                checksum,
            })
        }
        Err(errs) => {
            errors.extend(errs.into_iter().map(|(line, message)| FormatError {
                file: path.clone(),
                line,
                message,
            }));
            None
        }
    }
}

/// What a file name says.
enum Name {
    Migration(i64, String),
    /// Looks like a migration but is not one (e.g. `01-init.sql`): an error naming it.
    Invalid(String),
    Other,
}

/// The rule for what must be a migration: a top-level name that starts with an ASCII digit and
/// ends in `.sql` in any letter case. Such a file that cannot be read as `NNN_description.sql`
/// (a non-UTF-8 name, `.SQL`, `01-init.sql`, version 0, a dangling symlink) is an error naming
/// it, never silently skipped; anything else (`README.md`, `seed.sql`, subfolders) is ignored.
fn looks_like_migration(name: &[u8]) -> bool {
    name.first().is_some_and(u8::is_ascii_digit)
        && name.len() > 4
        && name[name.len() - 4..].eq_ignore_ascii_case(b".sql")
}

/// A file name for a message: invalid UTF-8 bytes as `\xNN`.
fn show_name(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn parse_name(name: &str) -> Name {
    let Some(stem) = name.strip_suffix(".sql") else {
        return Name::Other;
    };
    let starts_with_digit = stem.as_bytes().first().is_some_and(u8::is_ascii_digit);
    let Some((num, desc)) = stem.split_once('_') else {
        return if starts_with_digit {
            Name::Invalid("no `_` after the version (expected NNN_description.sql)".into())
        } else {
            Name::Other
        };
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return if starts_with_digit {
            Name::Invalid(format!(
                "`{num}` is not a number (expected NNN_description.sql)"
            ))
        } else {
            Name::Other
        };
    }
    match num.parse::<i64>() {
        Ok(0) => Name::Invalid("version 0 is reserved (versions start at 1)".into()),
        Ok(v) => Name::Migration(v, desc.replace('_', " ")),
        Err(_) => Name::Invalid(format!("version `{num}` does not fit in a 64-bit integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(
            matches!(parse_name("001_v1_schema.sql"), Name::Migration(1, d) if d == "v1 schema")
        );
        assert!(matches!(parse_name("1000_x.sql"), Name::Migration(1000, _)));
        assert!(matches!(parse_name("README.md"), Name::Other));
        assert!(matches!(parse_name("seed_test_data.sql"), Name::Other));
        assert!(matches!(parse_name("seed.sql"), Name::Other));
        assert!(matches!(parse_name("01-init.sql"), Name::Invalid(_)));
        assert!(looks_like_migration(b"002_caf\xe9.sql"));
        assert!(looks_like_migration(b"3_x.SQL"));
        assert!(!looks_like_migration(b"seed.sql"));
        assert!(!looks_like_migration(b"001_x.sql~"));
        assert_eq!(show_name(b"002_caf\xe9.sql"), "002_caf\\xe9.sql");
        assert!(matches!(parse_name("000_zero.sql"), Name::Invalid(_)));
        assert!(matches!(
            parse_name("99999999999999999999_x.sql"),
            Name::Invalid(_)
        ));
    }
}
