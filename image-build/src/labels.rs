//! The labels every built image carries, so that `prune` (and people) can tell who built it,
//! for which consumer, when and from which commit.
//!
//! They are reproducible: nothing in them comes from the clock, so an unchanged rebuild is
//! served from the build cache and gives the same image ID. The `created` time is
//! `SOURCE_DATE_EPOCH` if set, else the commit time of the context's git HEAD, else left out;
//! prune goes by the engine's own image creation time.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `image-build` — which tool built the image (prune's main filter).
pub const TOOL: &str = "io.kubernaut.e2e.tool";
/// The suite the image was built for (`--consumer`, `E2E_CONSUMER`).
pub const CONSUMER: &str = "io.kubernaut.e2e.consumer";
/// The source's time, RFC 3339 UTC: `SOURCE_DATE_EPOCH`, else the git HEAD's commit time.
pub const CREATED: &str = "io.kubernaut.e2e.created";
/// The git commit of the build context (`unknown` outside a repository).
pub const GIT_COMMIT: &str = "io.kubernaut.e2e.git-commit";
pub const OCI_CREATED: &str = "org.opencontainers.image.created";
pub const OCI_REVISION: &str = "org.opencontainers.image.revision";
pub const OCI_SOURCE: &str = "org.opencontainers.image.source";
pub const TOOL_NAME: &str = "image-build";

/// Keys a user may not set with `--label` (prune depends on them).
pub const RESERVED: &[&str] = &[TOOL, CONSUMER, CREATED];

/// What git says about a context directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    pub commit: Option<String>,
    pub source: Option<String>,
    /// Commit time of HEAD, Unix seconds.
    pub commit_time: Option<u64>,
}

/// Asks git (argument vectors, no shell) for HEAD and the `origin` URL of the repository
/// containing `dir`; both are optional.
pub fn git_info(dir: &Path) -> GitInfo {
    let run = |args: &[&str]| -> Option<String> {
        let mut full = vec!["-C".to_string(), dir.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        duct::cmd("git", full)
            .stdout_capture()
            .stderr_null()
            .unchecked()
            .run()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    GitInfo {
        commit: run(&["rev-parse", "HEAD"]),
        source: run(&["config", "--get", "remote.origin.url"]).map(|u| strip_credentials(&u)),
        commit_time: run(&["log", "-1", "--format=%ct", "HEAD"]).and_then(|t| t.parse().ok()),
    }
}

/// `SOURCE_DATE_EPOCH` (Unix seconds, the reproducible-builds convention), if set.
pub fn source_date_epoch() -> Result<Option<SystemTime>, String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(|s| Some(UNIX_EPOCH + Duration::from_secs(s)))
            .map_err(|_| {
                format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds since 1970 (unset it or give e.g. `git log -1 --format=%ct`)")
            }),
        _ => Ok(None),
    }
}

/// Drops `user:password@` from a URL: secrets never end up in image labels.
pub fn strip_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}{path}");
        }
    }
    url.to_string()
}

/// The labels for one build. `created` is `SOURCE_DATE_EPOCH` if set; else the commit time of
/// HEAD is used; else the created labels are left out.
pub fn labels(
    consumer: &str,
    created: Option<SystemTime>,
    git: &GitInfo,
    context: &Path,
) -> BTreeMap<String, String> {
    let created = created.or_else(|| git.commit_time.map(|s| UNIX_EPOCH + Duration::from_secs(s)));
    let commit = git.commit.clone().unwrap_or_else(|| "unknown".into());
    let source = git
        .source
        .clone()
        .unwrap_or_else(|| format!("file://{}", context.display()));
    let mut l = BTreeMap::from([
        (TOOL.to_string(), TOOL_NAME.to_string()),
        (CONSUMER.to_string(), consumer.to_string()),
        (GIT_COMMIT.to_string(), commit.clone()),
        (OCI_REVISION.to_string(), commit),
        (OCI_SOURCE.to_string(), source),
    ]);
    if let Some(t) = created {
        let ts = e2e_core::report::utc_timestamp(t);
        l.insert(CREATED.to_string(), ts.clone());
        l.insert(OCI_CREATED.to_string(), ts);
    }
    l
}

/// Parses the `YYYY-MM-DDTHH:MM:SSZ` timestamps written by [`labels`] (also accepts
/// fractional seconds and a `+00:00` offset).
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "" | "+00:00" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 3600 + r[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // days_from_civil (H. Hinnant)
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    if secs < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for secs in [0u64, 951_782_400, 1_734_278_400, 1_795_000_000] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            let s = e2e_core::report::utc_timestamp(t);
            assert_eq!(parse_timestamp(&s), Some(t), "{s}");
        }
        assert_eq!(
            parse_timestamp("2024-12-15T17:00:00.123+01:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_734_278_400))
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn credentials_never_reach_labels() {
        assert_eq!(
            strip_credentials("https://bob:s3cret@github.com/org/repo.git"),
            "https://github.com/org/repo.git"
        );
        assert_eq!(
            strip_credentials("git@github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
    }

    #[test]
    fn labels_fall_back_outside_git() {
        let l = labels(
            "aianalysis",
            Some(UNIX_EPOCH),
            &GitInfo::default(),
            Path::new("/src/app"),
        );
        assert_eq!(l[TOOL], "image-build");
        assert_eq!(l[CONSUMER], "aianalysis");
        assert_eq!(l[OCI_CREATED], "1970-01-01T00:00:00Z");
        // No SOURCE_DATE_EPOCH and no commit: no time at all (never the clock).
        let l = labels("a", None, &GitInfo::default(), Path::new("/src/app"));
        assert!(!l.contains_key(CREATED) && !l.contains_key(OCI_CREATED));
        // The commit's time otherwise.
        let git = GitInfo {
            commit_time: Some(1_734_278_400),
            ..Default::default()
        };
        let l = labels("a", None, &git, Path::new("/src/app"));
        assert_eq!(l[CREATED], "2024-12-15T16:00:00Z");
        let l = labels("a", Some(UNIX_EPOCH), &git, Path::new("/src/app"));
        assert_eq!(l[CREATED], "1970-01-01T00:00:00Z");
        assert_eq!(l[OCI_REVISION], "unknown");
        assert_eq!(l[OCI_SOURCE], "file:///src/app");
    }
}
