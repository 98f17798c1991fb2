//! Rendering generated references in the chosen format.

use crate::cli::Format;
use crate::generate::Generated;
use e2e_core::CliError;

/// Default variable name for `--format env`: `DATASTORAGE_IMAGE` for `datastorage`.
pub fn default_var(name: &str) -> String {
    let base: String = name
        .rsplit('/')
        .next()
        .unwrap_or(name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let base = base.trim_matches('_');
    let base = if base.is_empty() { "IMAGE" } else { base };
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{base}_IMAGE")
    } else {
        format!("{base}_IMAGE")
    }
}

/// Checks a user-given variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_var(var: &str) -> Result<(), CliError> {
    let ok = var
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "--var `{var}` is not a valid variable name (letters, digits and `_`, not starting \
             with a digit)"
        )))
    }
}

/// `--format json` is one document, `{"tool": "tag-gen", "results": [...]}`, each result one
/// line between these two (streamed: `--count 100000` prints as it goes).
pub const JSON_HEAD: &str = "{\"tool\": \"tag-gen\", \"results\": [\n";
pub const JSON_TAIL: &str = "\n]}\n";

/// One output line for `g`. `var` is the variable name for `--format env`.
pub fn render(g: &Generated, format: Format, var: &str) -> String {
    match format {
        Format::Ref => g.reference.clone(),
        Format::Tag => g.tag.clone(),
        Format::Repo => g.repo(),
        Format::Json => {
            let mut v = serde_json::to_value(g).expect("serialisable");
            // The one JSON shape's per-result fields; making a reference takes no time worth
            // reporting.
            v["status"] = "generated".into();
            v["seconds"] = 0.0.into();
            format!("  {v}")
        }
        Format::Env => format!("{var}={}", g.reference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_names() {
        assert_eq!(default_var("holmesgpt-api"), "HOLMESGPT_API_IMAGE");
        assert_eq!(default_var("kubernaut/aianalysis"), "AIANALYSIS_IMAGE");
        assert_eq!(default_var("9x"), "_9X_IMAGE");
        assert!(check_var("DS_IMAGE").is_ok());
        assert!(check_var("1A").is_err());
        assert!(check_var("A-B").is_err());
    }
}
