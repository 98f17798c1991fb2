//! OCI image references (`[registry/]path[:tag][@digest]`), parsed against the grammar of
//! `distribution/reference`, with errors that say which part is wrong and why.
//!
//! Hand-written rather than a regex so that each failure can be explained (the upstream
//! tooling only ever said "invalid reference format").

use serde::Serialize;
use std::fmt;

/// Longest tag the distribution spec accepts.
pub const MAX_TAG_LEN: usize = 128;
/// Longest name (registry + path) the distribution spec accepts.
pub const MAX_NAME_LEN: usize = 255;

/// A parsed, valid image reference. Fields hold the text exactly as given: no defaulting to
/// `docker.io` or `latest`, because our tools must keep `localhost/` names as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and validates `input`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        parse(input)
    }

    /// `registry/repository` (or just `repository`).
    pub fn name(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.repository),
            None => self.repository.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Why a reference is invalid; `Display` gives a full sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid reference `{}`: {}", self.input, self.reason)
    }
}

impl std::error::Error for ReferenceError {}

fn parse(input: &str) -> Result<Reference, ReferenceError> {
    let err = |reason: String| ReferenceError {
        input: input.to_string(),
        reason,
    };
    if input.is_empty() {
        return Err(err("it is empty".into()));
    }
    if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(format!("it contains the character {c:?}")));
    }

    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => {
            check_digest(d).map_err(&err)?;
            (r, Some(d.to_string()))
        }
        None => (input, None),
    };
    // A tag follows the last ':' only if no '/' comes after it (a ':' before a '/' is a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        check_tag(t).map_err(&err)?;
    }
    if name.is_empty() {
        return Err(err("the name before the tag is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(err(format!(
            "the name is {} characters long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }

    let (registry, repository) = split_registry(name);
    if let Some(r) = registry {
        check_registry(r).map_err(&err)?;
    }
    check_repository(repository).map_err(&err)?;
    Ok(Reference {
        registry: registry.map(str::to_string),
        repository: repository.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// Docker's rule: the first path component is a registry when it contains `.` or `:`, is
/// `localhost`, or has an uppercase letter (which a repository may not).
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "the tag is {} characters long; at most {MAX_TAG_LEN} are allowed",
            tag.len()
        ));
    }
    let first = tag.chars().next().unwrap_or('_');
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(format!(
            "the tag `{tag}` starts with {first:?}; it must start with a letter, digit or `_`"
        ));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "the tag `{tag}` contains {c:?}; only letters, digits, `_`, `.` and `-` are allowed"
        ));
    }
    Ok(())
}

fn check_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!(
            "the digest `{d}` has no `:`; expected `algorithm:hex` such as `sha256:…`"
        ));
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '-', '_']).all(|c| {
            c.chars().next().is_some_and(|f| f.is_ascii_alphabetic())
                && c.chars().all(|ch| ch.is_ascii_alphanumeric())
        });
    if !alg_ok {
        return Err(format!("the digest algorithm `{alg}` is not valid"));
    }
    if hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "the digest `{d}` must end in at least 32 hexadecimal characters"
        ));
    }
    if alg == "sha256" && hex.len() != 64 {
        return Err(format!(
            "a sha256 digest has 64 hexadecimal characters, this one has {}",
            hex.len()
        ));
    }
    Ok(())
}

fn check_registry(r: &str) -> Result<(), String> {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("the registry port `{p}` is not a number"));
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return Ok(()); // IPv6 literal; its inner syntax is the resolver's business.
    }
    for comp in host.split('.') {
        let ok = !comp.is_empty()
            && comp.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !comp.starts_with('-')
            && !comp.ends_with('-');
        if !ok {
            return Err(format!(
                "the registry `{r}` is not a valid host name (component `{comp}`)"
            ));
        }
    }
    Ok(())
}

fn check_repository(repo: &str) -> Result<(), String> {
    for (i, comp) in repo.split('/').enumerate() {
        check_path_component(comp)
            .map_err(|why| format!("repository path component {} `{comp}` {why}", i + 1))?;
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn check_path_component(comp: &str) -> Result<(), String> {
    if comp.is_empty() {
        return Err("is empty (two `/` in a row, or a leading/trailing `/`)".into());
    }
    if let Some(c) = comp.chars().find(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "contains the uppercase letter {c:?}; repositories must be lowercase"
        ));
    }
    if let Some(c) = comp
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains {c:?}; only a-z, 0-9 and the separators `.`, `_`, `__`, `-` are allowed"
        ));
    }
    let bytes = comp.as_bytes();
    let is_sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    if is_sep(bytes[0]) || is_sep(bytes[bytes.len() - 1]) {
        return Err("starts or ends with a separator".into());
    }
    // Check each run of separators is one of `.`, `_`, `__`, `-+`.
    let mut i = 0;
    while i < bytes.len() {
        if is_sep(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_sep(bytes[i]) {
                i += 1;
            }
            let run = &comp[start..i];
            let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
            if !ok {
                return Err(format!(
                    "has the separator run `{run}`, which is not allowed"
                ));
            }
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Turns free text into one repository path component: lowercase, characters outside
/// `[a-z0-9._-]` become `-`, separator runs the grammar forbids collapse to `-`, and leading or
/// trailing separators are dropped. Returns `None` when nothing valid is left.
pub fn sanitize_component(input: &str) -> Option<String> {
    let mapped: String = input
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut out = String::with_capacity(mapped.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if !run.is_empty() {
            let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
            out.push_str(if ok { run } else { "-" });
            run.clear();
        }
    };
    for c in mapped.chars() {
        if matches!(c, '.' | '_' | '-') {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    let trimmed = out.trim_matches(|c| matches!(c, '.' | '_' | '-'));
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Turns free text into tag characters: lowercase, characters outside `[a-z0-9_.-]` become
/// `-`, runs of `-` collapse, and leading/trailing `.`/`-` are dropped. Length is not checked
/// here: the caller decides (truncating could make two tags equal).
pub fn sanitize_tag_part(input: &str) -> Option<String> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed = out.trim_matches(|c| matches!(c, '.' | '-'));
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn bad(s: &str) -> String {
        Reference::parse(s).unwrap_err().reason
    }

    #[test]
    fn parses_common_forms() {
        let r = ok("localhost/datastorage:aianalysis-1884d123");
        assert_eq!(r.registry.as_deref(), Some("localhost"));
        assert_eq!(r.repository, "datastorage");
        assert_eq!(r.tag.as_deref(), Some("aianalysis-1884d123"));
        let r = ok("localhost:5000/kubernaut/aianalysis:v1");
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.repository, "kubernaut/aianalysis");
        let r = ok("quay.io/jordigilh/redis:7-alpine");
        assert_eq!(r.registry.as_deref(), Some("quay.io"));
        let r = ok("postgres");
        assert_eq!((r.registry, r.tag), (None, None));
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(ok(&d).digest.unwrap(), format!("sha256:{}", "a".repeat(64)));
        assert_eq!(ok("x/a__b.c-d---e/f:_x").to_string(), "x/a__b.c-d---e/f:_x");
    }

    #[test]
    fn explains_errors() {
        assert!(bad("").contains("empty"));
        assert!(bad("foo/Bar").contains("uppercase"));
        assert!(bad("foo:-x").contains("starts with '-'"));
        assert!(bad("foo:a+b").contains("contains '+'"));
        assert!(bad(&format!("foo:{}", "a".repeat(129))).contains("at most 128"));
        assert!(bad("foo//bar").contains("is empty"));
        assert!(bad("foo._bar").contains("separator run"));
        assert!(bad("foo@sha256:abc").contains("at least 32 hexadecimal"));
        assert!(bad(&format!("foo@sha256:{}", "a".repeat(40))).contains("64 hexadecimal"));
        assert!(bad("localhost:port/x").contains("not a number"));
        assert!(bad("foo bar").contains("' '"));
        assert!(bad(":tag").contains("empty"));
    }

    #[test]
    fn sanitizes() {
        assert_eq!(
            sanitize_component("HolmesGPT API").unwrap(),
            "holmesgpt-api"
        );
        assert_eq!(sanitize_component("a._b").unwrap(), "a-b");
        assert_eq!(sanitize_component("__x__").unwrap(), "x");
        assert_eq!(sanitize_component("--"), None);
        assert_eq!(sanitize_tag_part("Alice Smith").unwrap(), "alice-smith");
        assert_eq!(sanitize_tag_part(".-x_y.-").unwrap(), "x_y");
        assert_eq!(sanitize_tag_part("!!!"), None);
    }
}
