//! Integration tests' view of the testbed (`scripts/testbed/up`): the services it started, read
//! from its env file.
//!
//! A test asks for the keys it needs. When one is missing the test is skipped with a loud
//! message, unless `E2E_REQUIRE=1` (set by `.ci/run`), in which case it fails: in CI a missing
//! service is a failure, never a silent skip.
//!
//! ```no_run
//! let Some(tb) = e2e_testbed::require(&["DOCKER_HOST"]) else { return };
//! let host = tb.get("DOCKER_HOST");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The testbed's `KEY=value` pairs.
#[derive(Debug, Clone, Default)]
pub struct Testbed {
    vars: BTreeMap<String, String>,
    source: Option<PathBuf>,
}

impl Testbed {
    /// Reads the env file: `$E2E_TESTBED_ENV` if set, else `<workspace>/target/testbed/env`.
    /// Variables set in the test process's environment override the file's.
    pub fn load() -> Self {
        let path = env_file_path();
        let mut vars = std::fs::read_to_string(&path)
            .map(|text| parse_env(&text))
            .unwrap_or_default();
        let source = path.exists().then_some(path);
        for (k, v) in std::env::vars() {
            if vars.contains_key(&k) || k.starts_with("E2E_") {
                vars.insert(k, v);
            }
        }
        Testbed { vars, source }
    }

    /// The value of `key`; panics (with the env file's path) if absent — call `require` first.
    pub fn get(&self, key: &str) -> &str {
        self.try_get(key).unwrap_or_else(|| {
            panic!(
                "testbed key {key} missing (env file: {})",
                self.source_display()
            )
        })
    }

    pub fn try_get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// All pairs, for handing to a child process's environment.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    fn source_display(&self) -> String {
        self.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| format!("{} (not found)", env_file_path().display()))
    }
}

/// Loads the testbed and checks that every key in `keys` is present.
///
/// Returns `None` (after printing a loud SKIP line) when one is missing and `E2E_REQUIRE` is not
/// `1`; panics when it is.
pub fn require(keys: &[&str]) -> Option<Testbed> {
    let tb = Testbed::load();
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| tb.try_get(k).is_none())
        .collect();
    if missing.is_empty() {
        return Some(tb);
    }
    let msg = format!(
        "testbed service missing: {} not set (env file: {}); run `make testbed-up`",
        missing.join(", "),
        tb.source_display()
    );
    if required() {
        panic!("{msg} [E2E_REQUIRE=1 makes this a failure]");
    }
    eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    None
}

/// Whether missing services are failures (`E2E_REQUIRE=1`).
pub fn required() -> bool {
    std::env::var("E2E_REQUIRE").is_ok_and(|v| v == "1")
}

/// Where the env file is looked for.
pub fn env_file_path() -> PathBuf {
    if let Some(p) = std::env::var_os("E2E_TESTBED_ENV") {
        return PathBuf::from(p);
    }
    workspace_root().join("target/testbed/env")
}

/// The workspace root: two levels above this crate (`crates/e2e-testbed`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf())
}

/// Parses `KEY=value` lines; `#` comments, blank lines, `export ` prefixes and one level of
/// single or double quotes are accepted (the file is also sourced by sh).
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// A unique, valid name for a per-test resource (database, image, namespace): `prefix-<pid>-<n>`
/// with a random part so parallel test processes never share one.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_lines() {
        let m = parse_env("# c\nA=1\nexport B=\"x y\"\n\nC='z'\nD=a=b\n");
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "x y");
        assert_eq!(m["C"], "z");
        assert_eq!(m["D"], "a=b");
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("t"), unique_name("t"));
    }
}
