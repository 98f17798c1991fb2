//! What to build: image specs from the single-build flags, from repeatable `--image` specs,
//! and from a JSON/YAML spec file, merged with the flags that apply to every image.

pub use e2e_context::spec::{parse_image_flag, parse_kv, read_spec_file, RawSpec};
use e2e_core::{CliError, Reference};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One image to build, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The reference to tag, normalised (`:latest` added when no tag was given).
    pub reference: String,
    pub context: PathBuf,
    /// The Dockerfile; `None` means `<context>/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub platform: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
}

/// Settings given once that apply to every image (a spec may override or add to them).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
}

/// Normalises and validates a reference for building: a tag or nothing (`latest`), no digest.
pub fn normalize_reference(r: &str) -> Result<String, CliError> {
    let parsed = Reference::parse(r).map_err(|e| CliError::usage(e.to_string()))?;
    if parsed.digest.is_some() {
        return Err(CliError::usage(format!(
            "cannot build `{r}`: a digest is computed by the engine, give a tag instead"
        )));
    }
    Ok(match parsed.tag {
        Some(_) => parsed.to_string(),
        None => format!("{}:latest", parsed.name()),
    })
}

/// Applies defaults and validates: references valid and distinct, reserved labels untouched.
pub fn resolve(raw: Vec<RawSpec>, defaults: &Defaults) -> Result<Vec<ImageSpec>, CliError> {
    let mut out: Vec<ImageSpec> = Vec::new();
    for r in raw {
        let reference = normalize_reference(&r.tag)?;
        if out.iter().any(|s| s.reference == reference) {
            return Err(CliError::usage(format!(
                "`{reference}` is listed twice; each image needs its own reference"
            )));
        }
        let mut build_args = defaults.build_args.clone();
        build_args.extend(r.build_args);
        let mut labels = defaults.labels.clone();
        labels.extend(r.labels);
        if let Some(k) = labels
            .keys()
            .find(|k| crate::labels::RESERVED.contains(&k.as_str()))
        {
            return Err(CliError::usage(format!(
                "label `{k}` is set by image-build itself (prune relies on it); use another key"
            )));
        }
        out.push(ImageSpec {
            reference,
            context: r.context.unwrap_or_else(|| PathBuf::from(".")),
            dockerfile: r.file,
            build_args,
            target: r.target.or_else(|| defaults.target.clone()),
            labels,
            platform: r.platform.or_else(|| defaults.platform.clone()),
            no_cache: r.no_cache.unwrap_or(defaults.no_cache),
            pull: r.pull.unwrap_or(defaults.pull),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_specs_override() {
        let defaults = Defaults {
            build_args: BTreeMap::from([("A".into(), "d".into()), ("B".into(), "d".into())]),
            target: Some("dev".into()),
            no_cache: true,
            ..Default::default()
        };
        let raw = vec![
            parse_image_flag("tag=x/a,build-arg=A=s,target=prod").unwrap(),
            parse_image_flag("x/b:2,no-cache=false").unwrap(),
        ];
        let s = resolve(raw, &defaults).unwrap();
        assert_eq!(s[0].reference, "x/a:latest");
        assert_eq!(s[0].build_args["A"], "s");
        assert_eq!(s[0].build_args["B"], "d");
        assert_eq!(s[0].target.as_deref(), Some("prod"));
        assert!(s[0].no_cache);
        assert_eq!(s[1].target.as_deref(), Some("dev"));
        assert!(!s[1].no_cache);
    }

    #[test]
    fn refuses_duplicates_digests_and_reserved_labels() {
        let d = Defaults::default();
        let dup = vec![
            parse_image_flag("x/a:1").unwrap(),
            parse_image_flag("x/a:1").unwrap(),
        ];
        assert!(resolve(dup, &d).unwrap_err().message.contains("twice"));
        let dig = format!("x/a@sha256:{}", "a".repeat(64));
        assert!(normalize_reference(&dig).is_err());
        let reserved = vec![parse_image_flag("x/a:1,label=io.kubernaut.e2e.consumer=x").unwrap()];
        assert!(resolve(reserved, &d).is_err());
    }
}
