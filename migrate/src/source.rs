//! Discovery, parsing and validation of a migration directory (`../shared/spec/migrations.md`).
//!
//! Every format problem of every file is collected (file, line, what is wrong) and reported
//! together, before anything touches the database.

use crate::envsub;
use crate::split::{self, Stmt};
use sha2::{Digest, Sha384};
use std::fmt;
use std::path::{Path, PathBuf};

/// How a file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// With `-- +goose` annotations.
    Goose,
    /// No annotations: the whole file is the up migration (sqlx style).
    Plain,
}

/// One direction of a migration, as it will be executed.
#[derive(Debug, Clone)]
pub struct Section {
    /// The SQL sent to the server (ENVSUB applied). Lines keep the file's numbering.
    pub sql: String,
    /// File line number of `sql`'s first line.
    pub first_line: usize,
    /// Units sent one at a time outside a transaction: single statements, and whole
    /// StatementBegin/End blocks. Offsets are into `sql`.
    pub units: Vec<Unit>,
}

/// A statement or a StatementBegin/End block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub start: usize,
    pub end: usize,
    /// File line of the unit's first statement.
    pub line: usize,
    /// A StatementBegin/End block (possibly several SQL statements).
    pub block: bool,
}

impl Section {
    pub fn unit_text(&self, u: &Unit) -> &str {
        &self.sql[u.start..u.end]
    }

    /// Every SQL statement with its file line, blocks split into their statements (for locating a
    /// failure and for counting).
    pub fn statements(&self) -> Vec<Stmt> {
        let mut out = Vec::new();
        for u in &self.units {
            if u.block {
                let line = self.line_of(u.start);
                if let Ok(inner) = split::split(&self.sql[u.start..u.end], line) {
                    out.extend(inner.into_iter().map(|s| Stmt {
                        start: s.start + u.start,
                        end: s.end + u.start,
                        ..s
                    }));
                    continue;
                }
            }
            out.push(Stmt {
                start: u.start,
                end: u.end,
                line: u.line,
                terminated: true,
            });
        }
        out
    }

    /// File line of byte offset `off` in `sql`.
    pub fn line_of(&self, off: usize) -> usize {
        self.first_line
            + self.sql.as_bytes()[..off.min(self.sql.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
    }
}

/// A parsed migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    /// File name, e.g. `001_v1_schema.sql`.
    pub name: String,
    /// sqlx's description: the part after `VERSION_`, `_` replaced by spaces.
    pub description: String,
    pub path: PathBuf,
    pub format: Format,
    /// Runs outside a transaction (`-- +goose NO TRANSACTION`, or a plain file starting with
    /// `-- no-transaction`).
    pub no_tx: bool,
    pub up: Section,
    /// None when the file has no Down section (plain files, goose files without `Down`).
    pub down: Option<Section>,
    /// SHA-384 of the Up section as written (for a plain file: of the whole file, as sqlx
    /// computes it). ENVSUB values are not part of it, so running with other values does not
    /// make an applied file "modified"; editing the Up section does, editing Down does not.
    pub checksum: Vec<u8>,
}

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
                "migration directory `{}` {reason}; pass --dir (or MIGRATIONS_DIR) with the directory holding the NNN_description.sql files",
                dir.display()
            ),
            LoadError::Empty { dir } => write!(
                f,
                "migration directory `{}` holds no migrations (files named NNN_description.sql at its top level); check --dir / MIGRATIONS_DIR",
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

/// The migrations of a directory, sorted by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Things worth telling a person that do not stop the run.
    pub warnings: Vec<String>,
}

impl MigrationSet {
    /// Loads `dir` with ENVSUB values from the process environment.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::load_with_env(dir, &|k| std::env::var(k).ok())
    }

    /// Loads `dir`, taking ENVSUB values from `env`.
    pub fn load_with_env(
        dir: impl AsRef<Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, LoadError> {
        let dir = dir.as_ref().to_path_buf();
        let entries = std::fs::read_dir(&dir).map_err(|e| LoadError::Dir {
            dir: dir.clone(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist".to_string(),
                _ => format!("cannot be read ({e})"),
            },
        })?;
        let mut files = Vec::new();
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        for entry in entries.flatten() {
            let raw = entry.file_name();
            if !looks_like_migration(raw.as_encoded_bytes()) {
                continue;
            }
            let path = entry.path();
            let shown = show_name(raw.as_encoded_bytes());
            let mut refuse = |message: String| {
                errors.push(FormatError {
                    file: dir.join(&shown),
                    line: 0,
                    message,
                })
            };
            // Follows symlinks: a link to a file counts, a dangling one is an error.
            match std::fs::metadata(&path) {
                Ok(md) if md.is_dir() => continue,
                Ok(md) if !md.is_file() => {
                    refuse("looks like a migration but is not a regular file".into());
                    continue;
                }
                Err(e) => {
                    let why = if path.symlink_metadata().is_ok() {
                        "is a symbolic link to a missing file".to_string()
                    } else {
                        format!("cannot be read: {e}")
                    };
                    refuse(why);
                    continue;
                }
                Ok(_) => {}
            }
            let Some(name) = raw.to_str() else {
                refuse(
                    "the file name is not valid UTF-8 (shown with \\x escapes); rename it".into(),
                );
                continue;
            };
            if !name.ends_with(".sql") {
                refuse(format!(
                    "ends in `{}`: migration files end in lowercase `.sql`; rename it",
                    &name[name.len() - 4..]
                ));
                continue;
            }
            match parse_name(name) {
                Name::Migration(version, description) => {
                    files.push((version, name.to_string(), description, path))
                }
                Name::Invalid(why) => refuse(format!("looks like a migration but {why}")),
                Name::Other => {}
            }
        }
        if files.is_empty() && errors.is_empty() {
            return Err(LoadError::Empty { dir });
        }
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

        for w in files.windows(2) {
            if w[0].0 == w[1].0 {
                errors.push(FormatError {
                    file: w[1].3.clone(),
                    line: 0,
                    message: format!(
                        "version {} is used by two files: `{}` and `{}`; renumber one of them",
                        w[0].0, w[0].1, w[1].1
                    ),
                });
            }
        }
        let mut migrations = Vec::new();
        for (version, name, description, path) in files {
            let text = match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(t) => t,
                    Err(_) => {
                        errors.push(FormatError {
                            file: path,
                            line: 0,
                            message: "is not valid UTF-8".into(),
                        });
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(FormatError {
                        file: path,
                        line: 0,
                        message: format!("cannot be read: {e}"),
                    });
                    continue;
                }
            };
            match parse_file(&text, env) {
                Ok(p) => {
                    for (line, w) in p.warnings {
                        warnings.push(format!("{}:{line}: {w}", path.display()));
                    }
                    let checksum = Sha384::digest(p.up_source.as_bytes()).to_vec();
                    migrations.push(Migration {
                        version,
                        name,
                        description,
                        path,
                        format: p.format,
                        no_tx: p.no_tx,
                        up: p.up,
                        down: p.down,
                        checksum,
                    });
                }
                Err(errs) => errors.extend(errs.into_iter().map(|(line, message)| FormatError {
                    file: path.clone(),
                    line,
                    message,
                })),
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

    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }
}

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

/// The result of parsing one file's text.
#[derive(Debug)]
pub struct Parsed {
    pub format: Format,
    pub no_tx: bool,
    pub up: Section,
    pub down: Option<Section>,
    /// The Up section as written in the file (before ENVSUB): what the checksum covers.
    pub up_source: String,
    /// (line, message)
    pub warnings: Vec<(usize, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    EnvsubOn,
    EnvsubOff,
}

/// goose's rule: a line is an annotation when, trimmed, it starts with `--` and contains `+goose`.
fn is_annotation(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("--") && t.contains("+goose")
}

fn parse_annotation(line: &str) -> Result<Annotation, String> {
    let trimmed_end = line.trim_end();
    if trimmed_end.len() != trimmed_end.trim_start().len() {
        return Err(
            "a goose annotation must start at the beginning of the line (no leading whitespace)"
                .into(),
        );
    }
    let body = trimmed_end.trim_start_matches('-').trim();
    let Some(rest) = body.strip_prefix("+goose") else {
        return Err(format!(
            "`{trimmed_end}` is not a goose annotation; write `-- +goose <Up|Down|StatementBegin|StatementEnd|NO TRANSACTION|ENVSUB ON|ENVSUB OFF>`"
        ));
    };
    if rest.contains("+goose") {
        return Err("`+goose` appears twice on one line".into());
    }
    let words: Vec<String> = rest.split_whitespace().map(str::to_lowercase).collect();
    let a = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["up"] => Annotation::Up,
        ["down"] => Annotation::Down,
        ["statementbegin"] => Annotation::StatementBegin,
        ["statementend"] => Annotation::StatementEnd,
        ["no", "transaction"] => Annotation::NoTransaction,
        ["envsub", "on"] => Annotation::EnvsubOn,
        ["envsub", "off"] => Annotation::EnvsubOff,
        [] => return Err("empty goose annotation: `-- +goose` must be followed by Up, Down, StatementBegin, StatementEnd, NO TRANSACTION or ENVSUB ON/OFF".into()),
        _ => {
            return Err(format!(
                "unknown goose annotation `{}`; known: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF",
                rest.trim()
            ))
        }
    };
    Ok(a)
}

enum Segment {
    /// Free SQL: statements end with `;`.
    Free { start: usize, end: usize },
    /// A StatementBegin/End block: one unit.
    Block { start: usize, end: usize },
}

struct SectionBuilder {
    sql: String,
    first_line: usize,
    segments: Vec<Segment>,
    free_start: usize,
}

impl SectionBuilder {
    fn new(first_line: usize) -> Self {
        SectionBuilder {
            sql: String::new(),
            first_line,
            segments: Vec::new(),
            free_start: 0,
        }
    }
    fn close_free(&mut self) {
        let end = self.sql.len();
        self.segments.push(Segment::Free {
            start: self.free_start,
            end,
        });
        self.free_start = end;
    }

    /// Lexes the segments into units. `strict`: every statement must end with `;` (goose files).
    fn finish(mut self, strict: bool, errors: &mut Vec<(usize, String)>) -> Section {
        self.close_free();
        let mut sec = Section {
            sql: self.sql,
            first_line: self.first_line,
            units: Vec::new(),
        };
        for seg in &self.segments {
            let (start, end, block) = match *seg {
                Segment::Free { start, end } => (start, end, false),
                Segment::Block { start, end } => (start, end, true),
            };
            let line = sec.line_of(start);
            match split::split(&sec.sql[start..end], line) {
                Err(e) => errors.push((e.line, e.to_string())),
                Ok(stmts) if block => {
                    if let (Some(first), Some(last)) = (stmts.first(), stmts.last()) {
                        sec.units.push(Unit {
                            start: start + first.start,
                            end: start + last.end,
                            line: first.line,
                            block: true,
                        });
                    }
                }
                Ok(stmts) => {
                    for s in stmts {
                        if !s.terminated && strict {
                            errors.push((
                                s.line,
                                "statement does not end with `;` (goose would reject it: missing semicolon?)"
                                    .into(),
                            ));
                        }
                        sec.units.push(Unit {
                            start: start + s.start,
                            end: start + s.end,
                            line: s.line,
                            block: false,
                        });
                    }
                }
            }
        }
        sec
    }
}

/// Parses one file's text (goose annotations or plain). Errors are (line, message).
pub fn parse_file(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, Vec<(usize, String)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut warnings = Vec::new();
    let goose = text.lines().any(is_annotation);
    if !goose {
        let no_tx = text.starts_with("-- no-transaction");
        let mut b = SectionBuilder::new(1);
        b.sql = text.to_string();
        let up = b.finish(false, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        check_tx_control(&up, no_tx, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        return Ok(Parsed {
            format: Format::Plain,
            no_tx,
            up,
            down: None,
            up_source: text.to_string(),
            warnings,
        });
    }
    if text.starts_with("-- no-transaction") {
        warnings.push((
            1,
            "`-- no-transaction` is sqlx's marker and is ignored in a goose file; use `-- +goose NO TRANSACTION`".to_string(),
        ));
    }

    #[derive(PartialEq)]
    enum State {
        Start,
        Up,
        Down,
    }
    let mut state = State::Start;
    let mut up_line = 0;
    let mut no_tx = false;
    let mut envsub = false;
    let mut block: Option<(usize, usize)> = None; // (begin line, sql offset after it)
    let mut up = SectionBuilder::new(1);
    let mut down: Option<SectionBuilder> = None;
    let mut down_line = 0;
    let mut down_offset = text.len();
    let mut unset = Vec::new();
    let mut offset = 0;

    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        let lineno = idx + 1;
        let line_start = offset;
        offset += raw.len();
        let cur = match down.as_mut() {
            Some(d) => d,
            None => &mut up,
        };
        if is_annotation(raw) {
            let a = match parse_annotation(raw) {
                Ok(a) => a,
                Err(e) => {
                    errors.push((lineno, e));
                    cur.sql.push_str(raw);
                    continue;
                }
            };
            match a {
                Annotation::Up => {
                    if state != State::Start {
                        errors.push((
                            lineno,
                            format!("second `-- +goose Up` (the first is on line {up_line}); a file has exactly one"),
                        ));
                    } else {
                        state = State::Up;
                        up_line = lineno;
                    }
                }
                Annotation::Down => match state {
                    State::Start => errors.push((
                        lineno,
                        "`-- +goose Down` before `-- +goose Up`; the Up section comes first".into(),
                    )),
                    State::Down => errors.push((
                        lineno,
                        format!("second `-- +goose Down` (the first is on line {down_line})"),
                    )),
                    State::Up => {
                        if let Some((bl, _)) = block.take() {
                            errors.push((
                                bl,
                                "`-- +goose StatementBegin` has no matching `-- +goose StatementEnd` before `-- +goose Down`".into(),
                            ));
                        }
                        state = State::Down;
                        down_line = lineno;
                        down_offset = line_start;
                        let mut d = SectionBuilder::new(lineno);
                        d.sql.push_str(raw);
                        down = Some(d);
                        continue;
                    }
                },
                Annotation::StatementBegin => {
                    if state == State::Start {
                        errors.push((
                            lineno,
                            "`-- +goose StatementBegin` before `-- +goose Up`".into(),
                        ));
                    } else if let Some((bl, _)) = block {
                        errors.push((
                            lineno,
                            format!("`-- +goose StatementBegin` inside the block opened on line {bl} (missing StatementEnd?)"),
                        ));
                    } else {
                        // The free text before the block must be complete statements.
                        cur.close_free();
                        cur.sql.push_str(raw);
                        block = Some((lineno, cur.sql.len()));
                        continue;
                    }
                }
                Annotation::StatementEnd => match block.take() {
                    None => errors.push((
                        lineno,
                        "`-- +goose StatementEnd` without a `-- +goose StatementBegin`".into(),
                    )),
                    Some((_, start)) => {
                        let end = cur.sql.len();
                        cur.segments.push(Segment::Block { start, end });
                        cur.sql.push_str(raw);
                        cur.free_start = cur.sql.len();
                        continue;
                    }
                },
                Annotation::NoTransaction => no_tx = true,
                Annotation::EnvsubOn => envsub = true,
                Annotation::EnvsubOff => envsub = false,
            }
            cur.sql.push_str(raw);
            continue;
        }
        if state == State::Start {
            let t = raw.trim();
            if !t.is_empty() && !t.starts_with("--") {
                errors.push((
                    lineno,
                    "SQL before `-- +goose Up`; a goose file starts its SQL after `-- +goose Up`"
                        .into(),
                ));
            }
        }
        if envsub {
            match envsub::substitute(raw, env, &mut unset) {
                Ok(s) => cur.sql.push_str(&s),
                Err(e) => {
                    errors.push((lineno, format!("ENVSUB: {}", e.0)));
                    cur.sql.push_str(raw);
                }
            }
            for name in unset.drain(..) {
                warnings.push((
                    lineno,
                    format!("ENVSUB: ${name} is not set; substituted an empty string"),
                ));
            }
        } else {
            cur.sql.push_str(raw);
        }
    }
    if state == State::Start {
        errors.push((
            1,
            "no `-- +goose Up` annotation; a goose file must have one (or drop all annotations for a plain file)".into(),
        ));
    }
    if let Some((bl, _)) = block {
        errors.push((
            bl,
            "`-- +goose StatementBegin` has no matching `-- +goose StatementEnd`".into(),
        ));
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(errors);
    }
    let up = up.finish(true, &mut errors);
    let down = down.map(|d| d.finish(true, &mut errors));
    if errors.is_empty() {
        check_tx_control(&up, no_tx, &mut errors);
        if let Some(d) = &down {
            check_tx_control(d, no_tx, &mut errors);
        }
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(errors);
    }
    Ok(Parsed {
        format: Format::Goose,
        no_tx,
        up,
        down,
        up_source: text[..down_offset].to_string(),
        warnings,
    })
}

/// A transactional migration must not commit or roll back by itself: its ledger row is written
/// in the same transaction.
/// Statements PostgreSQL would refuse for what they are, not for what they do: transaction
/// control inside a migration that already runs in a transaction, and psql meta-commands
/// (`\restrict`, which newer pg_dump versions write, `\connect`, `\i`), which are not SQL.
fn check_tx_control(sec: &Section, no_tx: bool, errors: &mut Vec<(usize, String)>) {
    for s in sec.statements() {
        let text = s.text(&sec.sql);
        if text.starts_with('\\') {
            let line = text.lines().next().unwrap_or("").trim();
            let cmd = line.split_whitespace().next().unwrap_or(line);
            errors.push((
                s.line,
                format!(
                    "`{cmd}` is a psql meta-command, not SQL (pg_dump writes `\\restrict`/`\\unrestrict` lines for psql); delete the line"
                ),
            ));
            continue;
        }
        if no_tx {
            continue;
        }
        let first: String = text
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let is_tx_control = match first.as_str() {
            "begin" | "commit" | "rollback" | "end" | "abort" => true,
            "start" => text.to_ascii_lowercase().contains("transaction"),
            _ => false,
        };
        if is_tx_control {
            errors.push((
                s.line,
                format!(
                    "`{}` controls the transaction, but this migration already runs in one (with its ledger row); remove it, or mark the file `-- +goose NO TRANSACTION`",
                    text.lines().next().unwrap_or("").trim()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "APP_ENV").then(|| "test".to_string())
    }

    fn parse(text: &str) -> Result<Parsed, Vec<(usize, String)>> {
        parse_file(text, &env)
    }

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

    #[test]
    fn goose_sections_units_and_lines() {
        let text = "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$\nBEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql;\nSELECT 1;\n-- +goose StatementEnd\n\nINSERT INTO a VALUES (1);\n-- +goose Down\nDROP FUNCTION f();\nDROP TABLE a;\n";
        let p = parse(text).unwrap();
        assert_eq!(p.format, Format::Goose);
        assert!(!p.no_tx);
        let lines: Vec<_> = p.up.units.iter().map(|u| (u.line, u.block)).collect();
        assert_eq!(lines, [(2, false), (4, true), (10, false)]);
        assert!(p.up.unit_text(&p.up.units[1]).ends_with("SELECT 1;"));
        assert!(!p.up.sql.contains("DROP"));
        let down = p.down.unwrap();
        assert_eq!(down.first_line, 11);
        assert_eq!(
            down.units.iter().map(|u| u.line).collect::<Vec<_>>(),
            [12, 13]
        );
        let fine: Vec<_> = p.up.statements().iter().map(|s| s.line).collect();
        assert_eq!(fine, [2, 4, 7, 10]);
    }

    #[test]
    fn plain_files_and_sqlx_no_transaction() {
        let p = parse("CREATE TABLE a (x int);\nSELECT 1").unwrap();
        assert_eq!(p.format, Format::Plain);
        assert_eq!(p.up.units.len(), 2);
        assert!(!p.no_tx);
        let p = parse("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a (x);\n").unwrap();
        assert!(p.no_tx);
        let p = parse("\n-- no-transaction\nSELECT 1;\n").unwrap();
        assert!(!p.no_tx, "sqlx only honours the marker at the very start");
    }

    #[test]
    fn annotations_are_case_insensitive() {
        let p = parse(
            "-- +goose up\n-- +goose no   Transaction\nSELECT 1;\n-- +goose DOWN\nSELECT 2;\n",
        )
        .unwrap();
        assert!(p.no_tx);
        assert!(p.down.is_some());
    }

    #[test]
    fn every_error_with_its_line() {
        let text = "-- +goose Down\n-- +goose Up\nSELECT 1;\n -- +goose StatementBegin\n-- +goose Frobnicate\n-- +goose Up\n-- +goose StatementBegin\nSELECT 2;\n";
        let errs = parse(text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.0).collect();
        assert_eq!(lines, [1, 4, 5, 6, 7], "{errs:#?}");
        assert!(errs[0].1.contains("before `-- +goose Up`"));
        assert!(errs[1].1.contains("leading whitespace"));
        assert!(errs[2].1.contains("unknown goose annotation"));
        assert!(errs[3].1.contains("second `-- +goose Up`"));
        assert!(errs[4].1.contains("no matching"));
    }

    #[test]
    fn missing_up_and_sql_before_up() {
        let errs = parse("SELECT 0;\n-- +goose Down\nSELECT 1;\n").unwrap_err();
        assert!(errs.iter().any(|e| e.0 == 1 && e.1.contains("SQL before")));
        let errs = parse("-- +goose StatementEnd\n").unwrap_err();
        assert!(errs.iter().any(|e| e.1.contains("without a")));
    }

    #[test]
    fn unterminated_statement_and_string() {
        let errs = parse("-- +goose Up\nALTER TABLE post\n\n-- +goose Down\n").unwrap_err();
        assert_eq!(errs[0].0, 2);
        assert!(errs[0].1.contains("missing semicolon"));
        let errs = parse("-- +goose Up\nSELECT 1;\nSELECT 'abc;\n").unwrap_err();
        assert_eq!(errs[0].0, 3);
        assert!(errs[0].1.contains("never closed"));
    }

    #[test]
    fn psql_meta_commands_are_refused_with_their_line() {
        let errs =
            parse("\\restrict abc123\n\nSET search_path = '';\nCREATE TABLE t (x int);\n\n\\unrestrict abc123\n")
                .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].0, 1);
        assert!(
            errs[0].1.contains("`\\restrict` is a psql meta-command"),
            "{errs:?}"
        );
        assert_eq!(errs[1].0, 6);
        // A backslash at the start of a line inside a string or a dollar-quoted body is SQL.
        assert!(parse("SELECT E'a\n\\nb';\nSELECT $$\n\\x$$;\n").is_ok());
    }

    #[test]
    fn transaction_control_is_refused_unless_no_transaction() {
        let errs = parse("-- +goose Up\nBEGIN;\nSELECT 1;\nCOMMIT;\n").unwrap_err();
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 4]);
        assert!(parse("-- +goose Up\n-- +goose NO TRANSACTION\nBEGIN;\nCOMMIT;\n").is_ok());
        assert!(parse("-- +goose Up\nSTART TRANSACTION;\n").is_err());
    }

    #[test]
    fn envsub_between_on_and_off() {
        let p = parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${APP_ENV}';\n-- +goose ENVSUB OFF\nSELECT '${APP_ENV}';\n").unwrap();
        assert!(p.up.sql.contains("SELECT 'test';\n"));
        assert!(p.up.sql.contains("SELECT '${APP_ENV}';\n"));
        let errs =
            parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${NOPE?needed}';\n").unwrap_err();
        assert_eq!(errs[0].0, 3);
        let p = parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${NOPE}';\n").unwrap();
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn checksum_covers_the_up_section_as_written() {
        let a = parse("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n").unwrap();
        let b = parse("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 3;\n").unwrap();
        assert_eq!(a.up_source, b.up_source);
        assert_eq!(a.up_source, "-- +goose Up\nSELECT 1;\n");
        let e = parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${APP_ENV}';\n").unwrap();
        assert!(e.up_source.contains("${APP_ENV}"));
        let p = parse("SELECT 1;\n").unwrap();
        assert_eq!(p.up_source, "SELECT 1;\n");
    }
}
