//! What to build, as the user writes it: `--image` specs (comma-separated fields) and spec
//! files (YAML or JSON). image-build builds from them; `tag-gen content` digests the same
//! images, so both read them with this one parser.

use e2e_core::CliError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An image as written by the user, before defaults and validation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSpec {
    #[serde(alias = "ref", alias = "reference", alias = "image")]
    pub tag: String,
    #[serde(default)]
    pub context: Option<PathBuf>,
    #[serde(default, alias = "dockerfile")]
    pub file: Option<PathBuf>,
    #[serde(default, alias = "build_args", alias = "args")]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default, alias = "no_cache")]
    pub no_cache: Option<bool>,
    #[serde(default)]
    pub pull: Option<bool>,
}

/// The `images:` form of a spec file. The two forms are told apart by the document's shape
/// before the real parse (an untagged enum would lose the error's field and line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecDoc {
    images: Vec<RawSpec>,
}

/// Parses `KEY=VALUE`; a bare `KEY` takes its value from the environment (as
/// `docker build --build-arg KEY` does) and is dropped when the variable is unset.
pub fn parse_kv(s: &str, what: &str) -> Result<Option<(String, String)>, CliError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok(Some((k.trim().to_string(), v.to_string()))),
        Some(_) => Err(CliError::usage(format!(
            "{what} `{s}` has an empty name; expected KEY=VALUE"
        ))),
        None if !s.trim().is_empty() => Ok(std::env::var(s.trim())
            .ok()
            .map(|v| (s.trim().to_string(), v))),
        None => Err(CliError::usage(format!("empty {what}; expected KEY=VALUE"))),
    }
}

/// Splits an `--image` spec into fields at commas; a field in double quotes may contain
/// commas (`"build-arg=LIST=a,b"`), `""` inside quotes is a quote.
fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if field_start && !quoted => quoted = true,
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            }
            ',' if !quoted => {
                out.push(std::mem::take(&mut cur));
                field_start = true;
                continue;
            }
            c => cur.push(c),
        }
        field_start = false;
    }
    if quoted {
        return Err("a double quote is not closed".into());
    }
    out.push(cur);
    Ok(out)
}

/// Parses one `--image` spec:
/// `[tag=]REF[,context=DIR][,file=PATH][,target=T][,platform=P][,build-arg=K=V]...[,label=K=V]...[,no-cache][,pull]`.
pub fn parse_image_flag(s: &str) -> Result<RawSpec, CliError> {
    let err = |why: String| {
        CliError::usage(format!(
            "--image `{s}`: {why}\n  expected: tag=REF,context=DIR[,file=DOCKERFILE][,target=T][,build-arg=K=V]...[,label=K=V]...[,platform=P][,no-cache][,pull]"
        ))
    };
    let mut raw = RawSpec::default();
    for (i, field) in split_fields(s).map_err(err)?.into_iter().enumerate() {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None if i == 0 && (field.contains(':') || field.contains('/')) => {
                ("tag".to_string(), Some(field))
            }
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| err(format!("`{key}` needs a value (`{key}=...`)")))
        };
        let flag = |v: Option<&str>| -> Result<bool, CliError> {
            match v.map(|v| v.to_ascii_lowercase()) {
                None => Ok(true),
                Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
                Some(v) => Err(err(format!("`{key}={v}`: expected true or false"))),
            }
        };
        match key.as_str() {
            "tag" | "ref" | "reference" | "t" => raw.tag = need(value)?,
            "context" | "ctx" | "c" => raw.context = Some(need(value)?.into()),
            "file" | "dockerfile" | "f" => raw.file = Some(need(value)?.into()),
            "target" => raw.target = Some(need(value)?),
            "platform" => raw.platform = Some(need(value)?),
            "build-arg" | "arg" => {
                if let Some((k, v)) = parse_kv(&need(value)?, "build arg")? {
                    raw.build_args.insert(k, v);
                }
            }
            "label" => {
                if let Some((k, v)) = parse_kv(&need(value)?, "label")? {
                    raw.labels.insert(k, v);
                }
            }
            "no-cache" => raw.no_cache = Some(flag(value)?),
            "pull" => raw.pull = Some(flag(value)?),
            other => return Err(err(format!("unknown key `{other}`"))),
        }
    }
    if raw.tag.is_empty() {
        return Err(err("no tag (`tag=REF`)".into()));
    }
    Ok(raw)
}

/// Reads a spec file (JSON or YAML: a list of images, or `{images: [...]}`); relative paths in
/// it are taken relative to the file's directory.
pub fn read_spec_file(path: &Path) -> Result<Vec<RawSpec>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read spec file `{}`: {e}", path.display())))?;
    let invalid = |e: String| {
        CliError::usage(format!(
            "spec file `{}` is not valid: {e}\n  expected a list of images, or `images:` with one, each with tag, context, file, target, build-args, labels, platform, no-cache, pull",
            path.display()
        ))
    };
    let mut specs: Vec<RawSpec> = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        let shape: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if shape.is_object() {
            serde_json::from_str::<SpecDoc>(&text).map(|d| d.images)
        } else {
            serde_json::from_str(&text)
        }
        .map_err(|e| invalid(e.to_string()))?
    } else {
        // YAML is a superset of JSON, so this reads both.
        let shape: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if shape.is_mapping() {
            serde_norway::from_str::<SpecDoc>(&text).map(|d| d.images)
        } else {
            serde_norway::from_str(&text)
        }
        .map_err(|e| invalid(e.to_string()))?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for s in &mut specs {
        s.context = Some(base.join(s.context.take().unwrap_or_else(|| PathBuf::from("."))));
        s.file = s.file.take().map(|f| base.join(f));
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_flag() {
        let r = parse_image_flag(
            "localhost/a:1,context=ctx,file=ctx/x.Dockerfile,target=prod,build-arg=A=1,\"build-arg=LIST=a,b\",label=team=e2e,no-cache,pull=false",
        )
        .unwrap();
        assert_eq!(r.tag, "localhost/a:1");
        assert_eq!(r.context, Some(PathBuf::from("ctx")));
        assert_eq!(r.file, Some(PathBuf::from("ctx/x.Dockerfile")));
        assert_eq!(r.target.as_deref(), Some("prod"));
        assert_eq!(r.build_args["A"], "1");
        assert_eq!(r.build_args["LIST"], "a,b");
        assert_eq!(r.labels["team"], "e2e");
        assert_eq!(r.no_cache, Some(true));
        assert_eq!(r.pull, Some(false));
    }

    #[test]
    fn image_flag_errors_explain() {
        let e = parse_image_flag("context=x").unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("no tag"), "{}", e.message);
        let e = parse_image_flag("tag=a:1,colour=red").unwrap_err();
        assert!(e.message.contains("unknown key `colour`"));
        assert!(parse_image_flag("tag=a:1,\"context=x").is_err());
    }

    #[test]
    fn reads_yaml_and_json_spec_files() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("images.yaml");
        std::fs::write(
            &y,
            "images:\n  - tag: localhost/a:1\n    context: svc\n    file: svc/Dockerfile\n    build-args: {GOARCH: amd64}\n    no-cache: true\n",
        )
        .unwrap();
        let s = read_spec_file(&y).unwrap();
        assert_eq!(s[0].context, Some(dir.path().join("svc")));
        assert_eq!(s[0].file, Some(dir.path().join("svc/Dockerfile")));
        assert_eq!(s[0].build_args["GOARCH"], "amd64");
        let j = dir.path().join("images.json");
        std::fs::write(&j, r#"[{"tag": "localhost/b:1"}]"#).unwrap();
        assert_eq!(
            read_spec_file(&j).unwrap()[0].context,
            Some(dir.path().join("."))
        );
        std::fs::write(&j, r#"[{"tag": "x", "colour": 1}]"#).unwrap();
        assert!(read_spec_file(&j).is_err());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let y = dir.path().join("images.yaml");
        std::fs::write(&y, "images:\n  - tag: localhost/a:1\n    colour: red\n").unwrap();
        let e = read_spec_file(&y).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 3"), "{}", e.message);
        std::fs::write(
            &y,
            "- tag: localhost/a:1\n- tag: localhost/b:1\n  dockerfil: x\n",
        )
        .unwrap();
        let e = read_spec_file(&y).unwrap_err();
        assert!(
            e.message.contains("unknown field `dockerfil`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 3"), "{}", e.message);
        std::fs::write(&y, "images:\n  - tag: a:1\nextra: 1\n").unwrap();
        let e = read_spec_file(&y).unwrap_err();
        assert!(e.message.contains("unknown field `extra`"), "{}", e.message);
        let j = dir.path().join("images.json");
        std::fs::write(
            &j,
            "{\"images\": [\n  {\"tag\": \"x\",\n   \"colour\": 1}]}",
        )
        .unwrap();
        let e = read_spec_file(&j).unwrap_err();
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("line 3"), "{}", e.message);
    }
}
