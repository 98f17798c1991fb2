//! Image names as containerd stores them.
//!
//! `ctr images import` names an image from the archive's `RepoTags` the way Docker does:
//! `app:1` becomes `docker.io/library/app:1`, `team/app:1` becomes `docker.io/team/app:1`,
//! while `localhost/app:1` (Podman) and `localhost:5000/app:1` keep their registry. A pod spec
//! that says `image: localhost/app:1` finds the image under exactly that name.

use e2e_core::{CliError, Reference};

/// One image the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// As given (`localhost/app:1`, `app`).
    pub given: String,
    /// What to ask the engine for: the given name with `:latest` added when there is no tag
    /// (without a tag Docker would export every tag of the repository).
    pub engine: String,
    /// The name containerd lists (`docker.io/library/app:latest`, `localhost/app:1`).
    pub node: String,
}

impl ImageName {
    /// Parses a user's image reference. Digest references are refused: containerd cannot
    /// keep a name for them reliably.
    pub fn parse(given: &str) -> Result<Self, CliError> {
        let r = Reference::parse(given).map_err(|e| CliError::usage(e.to_string()))?;
        if r.digest.is_some() {
            return Err(CliError::usage(format!(
                "`{given}`: images are loaded by name and tag, not by digest (a node cannot keep a \
                 digest-only name); use the tag, e.g. `{}:<tag>`",
                r.name()
            )));
        }
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let engine = format!("{}:{tag}", r.name());
        Ok(Self {
            given: given.to_string(),
            node: containerd_name(&r.name(), &tag),
            engine,
        })
    }
}

/// containerd's (Docker's) normalised form of `name` + `tag`.
pub fn containerd_name(name: &str, tag: &str) -> String {
    format!("{}:{tag}", normalize_repo(name))
}

/// `app` -> `docker.io/library/app`, `team/app` -> `docker.io/team/app`; names whose first
/// component is a registry (has `.` or `:`, or is `localhost`) are kept.
pub fn normalize_repo(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "index.docker.io" {
                normalize_repo(&name["index.docker.io/".len()..])
            } else if first == "docker.io" && !name["docker.io/".len()..].contains('/') {
                format!("docker.io/library/{}", &name["docker.io/".len()..])
            } else {
                name.to_string()
            }
        }
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    }
}

/// Normalises a `RepoTags` entry from an archive (`app:1`, `localhost/app:1`); entries
/// without a tag get `latest`.
pub fn normalize_full(reference: &str) -> String {
    match Reference::parse(reference) {
        Ok(r) => containerd_name(&r.name(), r.tag.as_deref().unwrap_or("latest")),
        Err(_) => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_get_the_library_prefix() {
        let n = ImageName::parse("app").unwrap();
        assert_eq!(n.engine, "app:latest");
        assert_eq!(n.node, "docker.io/library/app:latest");
        assert_eq!(
            ImageName::parse("team/app:1").unwrap().node,
            "docker.io/team/app:1"
        );
        assert_eq!(
            ImageName::parse("docker.io/app:1").unwrap().node,
            "docker.io/library/app:1"
        );
    }

    #[test]
    fn localhost_and_registry_ports_are_kept() {
        let n = ImageName::parse("localhost/datastorage:aianalysis-1884d123").unwrap();
        assert_eq!(n.node, "localhost/datastorage:aianalysis-1884d123");
        assert_eq!(n.engine, "localhost/datastorage:aianalysis-1884d123");
        assert_eq!(
            ImageName::parse("localhost:5000/team/app:v1").unwrap().node,
            "localhost:5000/team/app:v1"
        );
        assert_eq!(
            ImageName::parse("quay.io/jordigilh/redis:7").unwrap().node,
            "quay.io/jordigilh/redis:7"
        );
        assert_eq!(
            ImageName::parse("localhost:5000/app").unwrap().node,
            "localhost:5000/app:latest"
        );
    }

    #[test]
    fn digests_and_bad_names_are_usage_errors() {
        let e = ImageName::parse(&format!("app@sha256:{}", "a".repeat(64))).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("not by digest"), "{}", e.message);
        assert_eq!(ImageName::parse("App:1").unwrap_err().code, 2);
    }

    #[test]
    fn archive_repo_tags() {
        assert_eq!(normalize_full("app:1"), "docker.io/library/app:1");
        assert_eq!(normalize_full("localhost/x:y"), "localhost/x:y");
        assert_eq!(normalize_full("localhost/x"), "localhost/x:latest");
    }
}
