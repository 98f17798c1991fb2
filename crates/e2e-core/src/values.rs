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

/// A `-v` count from the environment: a number (`2` is `-vv`) or a boolean word (`yes` is `-v`).
pub fn parse_count(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.trim().parse::<u8>() {
        return Ok(n);
    }
    parse_bool(s)
        .map(u8::from)
        .map_err(|_| format!("`{s}` is not a count; use a number (2 = -vv) or yes/no"))
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

    #[test]
    fn counts() {
        assert_eq!(parse_count("2"), Ok(2));
        assert_eq!(parse_count("yes"), Ok(1));
        assert_eq!(parse_count("off"), Ok(0));
        assert!(parse_count("lots").is_err());
    }

    /// The clap wiring every tool uses: a flag, or its variable with any boolean word.
    #[test]
    fn flags_take_boolean_words_from_the_environment() {
        use clap::{Arg, ArgAction, Command};
        let cmd = || {
            Command::new("t")
                .arg(
                    Arg::new("json")
                        .long("json")
                        .env("E2E_CORE_TEST_JSON")
                        .action(ArgAction::SetTrue)
                        .value_parser(parse_bool),
                )
                .arg(
                    Arg::new("v")
                        .short('v')
                        .env("E2E_CORE_TEST_VERBOSE")
                        .action(ArgAction::Count)
                        .value_parser(parse_count),
                )
        };
        cmd().debug_assert();
        let m = cmd().try_get_matches_from(["t", "--json", "-vv"]).unwrap();
        assert!(m.get_flag("json"));
        assert_eq!(m.get_count("v"), 2);
        // Each test runs in its own process under nextest.
        for (word, want) in [
            ("1", true),
            ("YES", true),
            ("on", true),
            ("0", false),
            ("no", false),
        ] {
            std::env::set_var("E2E_CORE_TEST_JSON", word);
            std::env::set_var("E2E_CORE_TEST_VERBOSE", word);
            let m = cmd().try_get_matches_from(["t"]).unwrap();
            assert_eq!(m.get_flag("json"), want, "{word}");
            assert_eq!(m.get_count("v"), u8::from(want), "{word}");
        }
        std::env::set_var("E2E_CORE_TEST_JSON", "maybe");
        assert!(cmd().try_get_matches_from(["t"]).is_err());
    }
}
