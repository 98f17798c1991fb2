//! One line per event on stdout, as `kubectl logs` and the diagnostics of ds-deploy read them.
//!
//! `logging.format: json` (upstream's default) writes one JSON object per line; `text` writes
//! `TIME LEVEL message key=value...`. Messages below `logging.level` are dropped.

use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        match text.to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" | "" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

struct Logger {
    min: Level,
    json: bool,
    namespace: Option<String>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets the level and format once, at startup. Lines logged before (config errors) use the
/// defaults: info, JSON.
pub fn init(level: Level, format: &str, namespace: Option<String>) {
    let _ = LOGGER.set(Logger {
        min: level,
        json: !format.eq_ignore_ascii_case("text"),
        namespace,
    });
}

pub fn enabled(level: Level) -> bool {
    level >= LOGGER.get().map_or(Level::Info, |l| l.min)
}

/// Writes one line: `message` plus `fields` (key, value).
pub fn emit(level: Level, message: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    if !enabled(level) {
        return;
    }
    let logger = LOGGER.get();
    let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
    let namespace = logger.and_then(|l| l.namespace.as_deref());
    let line = if logger.is_none_or(|l| l.json) {
        let mut obj = serde_json::Map::new();
        obj.insert("ts".into(), time.into());
        obj.insert("level".into(), level.name().into());
        obj.insert("msg".into(), message.into());
        if let Some(ns) = namespace {
            obj.insert("namespace".into(), ns.into());
        }
        for (k, v) in fields {
            obj.insert((*k).into(), v.to_string().into());
        }
        serde_json::Value::Object(obj).to_string()
    } else {
        let mut line = format!("{time} {:5} {message}", level.name().to_uppercase());
        if let Some(ns) = namespace {
            line.push_str(&format!(" namespace={ns}"));
        }
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v}"));
        }
        line
    };
    // A closed stdout must not take the service down; the line is lost either way.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `log!(Info, "message", key = value, ...)`.
#[macro_export]
macro_rules! log {
    ($level:ident, $msg:expr $(, $key:ident = $value:expr)* $(,)?) => {
        $crate::log::emit(
            $crate::log::Level::$level,
            &$msg,
            &[$((stringify!($key), &$value as &dyn std::fmt::Display)),*],
        )
    };
}
