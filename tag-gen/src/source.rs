//! Where the variable parts come from: the OS random source, the user, git, the clock.

use e2e_core::CliError;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Eight lowercase hex digits from the operating system's random source (never the clock:
/// the upstream clock-derived "uuid" repeated for ~4.3 s).
pub fn random_suffix() -> Result<String, CliError> {
    let mut buf = [0u8; 4];
    getrandom::getrandom(&mut buf)
        .map_err(|e| CliError::failure(format!("cannot read the OS random source: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// `$USER`, then the OS account name, then `unknown`.
pub fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| whoami::fallible::username().ok())
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// `git rev-parse --short=7 HEAD` in `dir` (run without a shell), cut to 7 characters;
/// `unknown` when git is missing or `dir` is not a repository with a commit.
pub fn git_hash(dir: Option<&Path>) -> String {
    let dir = dir.unwrap_or(Path::new("."));
    let out = duct::cmd!("git", "-C", dir, "rev-parse", "--short=7", "HEAD")
        .stdout_capture()
        .stderr_null()
        .unchecked()
        .run();
    match out {
        Ok(o) if o.status.success() => {
            let h = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let h: String = h.chars().take(7).collect();
            if h.len() == 7 && h.chars().all(|c| c.is_ascii_hexdigit()) {
                h
            } else {
                "unknown".to_string()
            }
        }
        _ => "unknown".to_string(),
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_eight_hex() {
        let s = random_suffix().unwrap();
        assert_eq!(s.len(), 8);
        assert!(s
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(s, random_suffix().unwrap()); // 1 in 4 billion to fail
    }

    #[test]
    fn git_hash_falls_back() {
        let dir = std::env::temp_dir().join("tag-gen-not-a-repo-test");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(git_hash(Some(&dir.join("missing"))), "unknown");
    }
}
