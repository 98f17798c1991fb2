//! Claims: one file per reference, created with `O_EXCL` in a shared directory, so that no two
//! tag-gen runs sharing the directory (parallel suites on one host) print the same reference.

use e2e_core::CliError;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;

/// Tries to claim `reference`; `Ok(false)` when it was already claimed.
pub fn claim(dir: &Path, reference: &str) -> Result<bool, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::failure(format!(
            "cannot create claim directory {}: {e}",
            dir.display()
        ))
    })?;
    // `/` and `:` cannot be in a file name; `@` and `+` cannot be in a reference's name+tag.
    let file: String = reference
        .chars()
        .map(|c| match c {
            '/' => '@',
            ':' => '+',
            c => c,
        })
        .collect();
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(&file))
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CliError::failure(format!(
            "cannot write claim file {}: {e}",
            dir.join(file).display()
        ))),
    }
}
