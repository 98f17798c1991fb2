//! Claims: one file per reference, created with `O_EXCL` in a shared directory, so that no two
//! tag-gen runs sharing the directory (parallel suites on one host) print the same reference.
//! The file is named after the reference when that fits in a file name (255 bytes), else after
//! its SHA-256; the rule depends only on the reference, so every run picks the same file.

use e2e_core::CliError;
use sha2::{Digest, Sha256};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Longest file name most file systems accept (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// Tries to claim `reference`; `Ok(false)` when it was already claimed.
pub fn claim(dir: &Path, reference: &str) -> Result<bool, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::failure(format!(
            "cannot create claim directory {}: {e}",
            dir.display()
        ))
    })?;
    let file = file_name(reference);
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(&file))
    {
        Ok(mut f) => {
            // The reference inside too, for people reading a directory of hashed names.
            let _ = writeln!(f, "{reference}");
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CliError::failure(format!(
            "cannot write claim file {}: {e}",
            dir.join(file).display()
        ))),
    }
}

/// The claim file for `reference`: readable (`/` -> `@`, `:` -> `+`, neither of which can be
/// in a reference's name or tag) when short enough, else `sha256-<hex>` (which has no `+`, so
/// it never equals a readable name).
pub fn file_name(reference: &str) -> String {
    let readable: String = reference
        .chars()
        .map(|c| match c {
            '/' => '@',
            ':' => '+',
            c => c,
        })
        .collect();
    if readable.len() <= NAME_MAX {
        return readable;
    }
    let d = Sha256::digest(reference.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_references_are_claimed_by_hash() {
        assert_eq!(file_name("localhost/a:b-1"), "localhost@a+b-1");
        let long = format!("localhost/{}:{}", "a/".repeat(100) + "b", "t".repeat(128));
        let f = file_name(&long);
        assert!(f.starts_with("sha256-") && f.len() == 71, "{f}");
        assert_eq!(f, file_name(&long));
        assert_ne!(f, file_name(&long.replace("tttt", "tttu")));
        let dir = tempfile::tempdir().unwrap();
        assert!(claim(dir.path(), &long).unwrap());
        assert!(!claim(dir.path(), &long).unwrap());
    }
}
