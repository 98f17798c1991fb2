//! Building references in the two DD-TEST-001 formats from sanitised parts.

use e2e_core::reference::{self, Reference, MAX_TAG_LEN};
use e2e_core::CliError;
use serde::Serialize;

/// One generated reference and the parts it was made of (the JSON output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generated {
    pub reference: String,
    pub registry: Option<String>,
    pub repository: String,
    pub tag: String,
    /// The name as given on the command line.
    pub name: String,
    #[serde(flatten)]
    pub parts: Parts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Parts {
    Infra {
        consumer: String,
        suffix: String,
    },
    Service {
        user: String,
        git: String,
        timestamp: u64,
    },
    /// From the digest of the build's inputs (`tag-gen content`).
    Content {
        consumer: String,
        /// The full SHA-256 (64 hex digits); the tag holds its first 12.
        digest: String,
        /// Entries of the context that are sent, and their bytes.
        files: usize,
        bytes: u64,
    },
    /// The whole tag was pinned.
    Pinned,
}

impl Generated {
    /// `registry/repository` (or the repository alone).
    pub fn repo(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

/// Sanitises a repository path given as free text (`/` separates components).
pub fn repository(arg: &str, value: &str) -> Result<String, CliError> {
    if value.trim().is_empty() {
        return Err(CliError::usage(format!("{arg} is empty")));
    }
    let comps: Option<Vec<String>> = value
        .split('/')
        .map(reference::sanitize_component)
        .collect();
    comps.map(|c| c.join("/")).ok_or_else(|| {
        CliError::usage(format!(
            "{arg} `{value}` has nothing usable left after sanitising (only separators or \
             symbols in a path component); use letters or digits"
        ))
    })
}

/// Sanitises free text that becomes part of a tag.
pub fn tag_part(arg: &str, value: &str) -> Result<String, CliError> {
    if value.trim().is_empty() {
        return Err(CliError::usage(format!("{arg} is empty")));
    }
    reference::sanitize_tag_part(value).ok_or_else(|| {
        CliError::usage(format!(
            "{arg} `{value}` has nothing usable left after sanitising (only separators or \
             symbols); use letters or digits"
        ))
    })
}

/// Checks a tag given verbatim (pinned tag or suffix), which is not sanitised: a pin must be
/// reproduced exactly or refused.
pub fn pinned(arg: &str, value: &str) -> Result<String, CliError> {
    reference::check_tag(value).map_err(|why| CliError::usage(format!("{arg}: {why}")))?;
    Ok(value.to_string())
}

/// Assembles and validates the final reference.
pub fn assemble(
    registry: Option<&str>,
    repository: String,
    tag: String,
    name: &str,
    tag_arg: &str,
    parts: Parts,
) -> Result<Generated, CliError> {
    if tag.len() > MAX_TAG_LEN {
        return Err(CliError::usage(format!(
            "the tag for `{name}` would be {} characters (`{tag}`); at most {MAX_TAG_LEN} are \
             allowed; shorten {tag_arg}",
            tag.len()
        )));
    }
    if tag.eq_ignore_ascii_case("latest") {
        return Err(CliError::usage(format!(
            "{tag_arg} would make the tag `latest`, which tag-gen never prints (it is shared \
             by everyone and overwritten by every build)"
        )));
    }
    let text = match registry {
        Some(r) => format!("{r}/{repository}:{tag}"),
        None => format!("{repository}:{tag}"),
    };
    let parsed = Reference::parse(&text).map_err(|e| CliError::usage(e.to_string()))?;
    // A registry-less first component with a `.` would be read back as a registry.
    if parsed.registry.as_deref() != registry {
        return Err(CliError::usage(format!(
            "`{text}` would be read as registry `{}`; pass --registry explicitly",
            parsed.registry.as_deref().unwrap_or("")
        )));
    }
    Ok(Generated {
        reference: text,
        registry: registry.map(str::to_string),
        repository,
        tag,
        name: name.to_string(),
        parts,
    })
}

/// Validates `--registry` (empty means none).
pub fn registry(value: &str) -> Result<Option<String>, CliError> {
    if value.is_empty() {
        return Ok(None);
    }
    let probe = format!("{value}/x");
    match Reference::parse(&probe) {
        Ok(r) if r.registry.as_deref() == Some(value) => Ok(Some(value.to_string())),
        Ok(_) => Err(CliError::usage(format!(
            "--registry `{value}` is not recognisable as a registry host (it needs a `.`, a \
             `:port`, or to be `localhost`)"
        ))),
        Err(e) => Err(CliError::usage(format!(
            "--registry `{value}`: {}",
            e.reason
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_and_assembles() {
        let repo = repository("infrastructure name", "Kubernaut/AI Analysis").unwrap();
        assert_eq!(repo, "kubernaut/ai-analysis");
        let g = assemble(
            Some("localhost"),
            repo,
            "x-1".into(),
            "n",
            "--consumer",
            Parts::Pinned,
        )
        .unwrap();
        assert_eq!(g.reference, "localhost/kubernaut/ai-analysis:x-1");
        assert_eq!(g.repo(), "localhost/kubernaut/ai-analysis");
    }

    #[test]
    fn refuses_unusable_input() {
        assert_eq!(repository("name", "").unwrap_err().code, 2);
        assert!(repository("name", "a//b")
            .unwrap_err()
            .message
            .contains("nothing usable"));
        assert!(tag_part("--consumer", "---").is_err());
        assert!(pinned("TAG_GEN_TAG", "-x").is_err());
        let latest = assemble(
            None,
            "a".into(),
            "LATEST".into(),
            "a",
            "--tag",
            Parts::Pinned,
        );
        assert!(latest.unwrap_err().message.contains("never prints"));
        let long = assemble(
            None,
            "a".into(),
            "a".repeat(129),
            "a",
            "--consumer",
            Parts::Pinned,
        );
        assert!(long.unwrap_err().message.contains("at most 128"));
        assert!(registry("not a host").is_err());
        assert!(registry("myregistry").is_err());
        assert_eq!(registry("").unwrap(), None);
        assert_eq!(
            registry("localhost:5000").unwrap().unwrap(),
            "localhost:5000"
        );
    }
}
