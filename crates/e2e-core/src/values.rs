//! Parsers for values people type or put in the environment, the same in every tool:
//! durations (`90s`, `5m`, `1h30m`; a bare number is seconds) and booleans
//! (`1/0/true/false/yes/no/on/off`, any case).

use std::time::Duration;

/// A duration in humantime syntax; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("`{s}` is not a duration ({e}); use e.g. 90s, 5m, 1h30m or a number of seconds")
    })
}

/// A boolean as people write it in environment variables and config files.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "f" | "" => Ok(false),
        _ => Err(format!(
            "`{s}` is not a boolean; use one of 1/0, true/false, yes/no, on/off"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }

    #[test]
    fn booleans() {
        for t in ["1", "TRUE", "Yes", "on"] {
            assert!(parse_bool(t).unwrap(), "{t}");
        }
        for f in ["0", "false", "NO", "off"] {
            assert!(!parse_bool(f).unwrap(), "{f}");
        }
        assert!(parse_bool("maybe").is_err());
    }
}
