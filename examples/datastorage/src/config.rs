//! The upstream DataStorage `config.yaml` (camelCase keys, facts 4.4) and its secrets files.
//!
//! Unknown keys are ignored, as the Go loader (`yaml.v3` without strict mode) ignores them, so
//! an upstream ConfigMap works unchanged; missing optional keys take the upstream defaults.
//! Passwords are never read from `config.yaml`, only from the secrets files it names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where the config is read from when `CONFIG_PATH` is not set (the upstream mount).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/datastorage/config.yaml";

/// A config or secrets file that cannot be used. Fatal at startup: the message names the file.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub what: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub redis: Redis,
    pub logging: Logging,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Server {
    pub port: u16,
    pub host: String,
    pub metrics_port: u16,
    pub health_port: u16,
    #[serde(deserialize_with = "go_duration")]
    pub read_timeout: Duration,
    #[serde(deserialize_with = "go_duration")]
    pub write_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(deserialize_with = "go_duration")]
    pub shutdown_timeout: Duration,
    pub signer_cert_dir: PathBuf,
    pub tls: Tls,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            port: 8080,
            host: "0.0.0.0".into(),
            metrics_port: 9090,
            health_port: 8081,
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            signer_cert_dir: "/etc/signing-certs".into(),
            tls: Tls::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Tls {
    /// Holds `tls.crt` and `tls.key` (a `kubernetes.io/tls` Secret mounted as a directory).
    pub cert_dir: PathBuf,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert_dir: "/etc/tls".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Database {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub ssl_mode: String,
    pub max_open_conns: u32,
    pub max_idle_conns: u32,
    #[serde(deserialize_with = "go_duration")]
    pub conn_max_lifetime: Duration,
    #[serde(deserialize_with = "go_duration")]
    pub conn_max_idle_time: Duration,
    pub secrets_file: Option<PathBuf>,
    pub username_key: String,
    pub password_key: String,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            host: "localhost".into(),
            port: 5432,
            name: "action_history".into(),
            user: "slm_user".into(),
            ssl_mode: "disable".into(),
            max_open_conns: 100,
            max_idle_conns: 20,
            conn_max_lifetime: Duration::from_secs(3600),
            conn_max_idle_time: Duration::from_secs(600),
            secrets_file: None,
            username_key: "username".into(),
            password_key: "password".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Redis {
    /// `host:port`.
    pub addr: String,
    pub db: i64,
    pub secrets_file: Option<PathBuf>,
    pub password_key: String,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            addr: "localhost:6379".into(),
            db: 0,
            secrets_file: None,
            password_key: "password".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Logging {
    pub level: String,
    /// `json` (the upstream default) or `text`.
    pub format: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// Credentials read from the secrets files; kept apart from `Config` so it can be logged.
#[derive(Clone, Default)]
pub struct Credentials {
    pub db_user: String,
    pub db_password: String,
    /// `None` when the secrets file has no password or an empty one: Redis without AUTH.
    pub redis_password: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("db_user", &self.db_user)
            .field("db_password", &"***")
            .field(
                "redis_password",
                &self.redis_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// Reads and validates the config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_owned(),
        what: format!("cannot read the config file: {e}"),
    })?;
    let config = parse(&text).map_err(|what| ConfigError {
        path: path.to_owned(),
        what,
    })?;
    Ok(config)
}

/// Parses `config.yaml` text; the error says what is wrong (serde_norway names line and column).
pub fn parse(text: &str) -> Result<Config, String> {
    // An empty file is a null document, which serde would reject as "invalid type: unit";
    // upstream treats it as all defaults, and so do we.
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let config: Config =
        serde_norway::from_str(text).map_err(|e| format!("cannot parse the config file: {e}"))?;
    config.validate()?;
    Ok(config)
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        let s = &self.server;
        let ports = [
            ("server.port", s.port),
            ("server.healthPort", s.health_port),
            ("server.metricsPort", s.metrics_port),
        ];
        for (i, (a, pa)) in ports.iter().enumerate() {
            for (b, pb) in &ports[i + 1..] {
                if pa == pb && *pa != 0 {
                    return Err(format!("{a} and {b} are both {pa}; they must differ"));
                }
            }
        }
        // This example links sqlx without a TLS backend, so it cannot honour a mode that
        // demands TLS; refusing is better than silently connecting in clear text.
        match self.database.ssl_mode.as_str() {
            "" | "disable" | "allow" | "prefer" => {}
            other => {
                return Err(format!(
                    "database.sslMode {other:?} is not supported by this example (it has no TLS to PostgreSQL); use disable"
                ))
            }
        }
        if self.redis.addr.rsplit_once(':').is_none() {
            return Err(format!(
                "redis.addr {:?} must be host:port",
                self.redis.addr
            ));
        }
        crate::log::Level::parse(&self.logging.level)
            .ok_or_else(|| {
                format!(
                    "logging.level {:?} is not one of debug, info, warn, error",
                    self.logging.level
                )
            })
            .map(|_| ())
    }

    /// Reads the secrets files the config names. A named file that cannot be read is fatal
    /// (a missing mount is a deployment error the logs must show); no file means no secret.
    pub fn credentials(&self) -> Result<Credentials, ConfigError> {
        let mut creds = Credentials {
            db_user: self.database.user.clone(),
            ..Credentials::default()
        };
        if let Some(path) = &self.database.secrets_file {
            let secrets = read_secrets(path)?;
            if let Some(user) = secrets.get(&self.database.username_key) {
                creds.db_user = user.clone();
            }
            creds.db_password = secrets
                .get(&self.database.password_key)
                .cloned()
                .ok_or_else(|| ConfigError {
                    path: path.clone(),
                    what: format!(
                        "no {:?} key in the secrets file",
                        self.database.password_key
                    ),
                })?;
        }
        if let Some(path) = &self.redis.secrets_file {
            let secrets = read_secrets(path)?;
            creds.redis_password = secrets
                .get(&self.redis.password_key)
                .filter(|p| !p.is_empty())
                .cloned();
        }
        Ok(creds)
    }
}

/// A secrets file: a flat YAML map such as `username: slm_user` / `password: test_password`.
fn read_secrets(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let err = |what: String| ConfigError {
        path: path.to_owned(),
        what,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read the secrets file: {e}")))?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let map: BTreeMap<String, serde_norway::Value> = serde_norway::from_str(&text)
        .map_err(|e| err(format!("cannot parse the secrets file: {e}")))?;
    // Values such as `password: 1234` are numbers in YAML; keep them as the text written.
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| {
            let s = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                serde_norway::Value::Null => String::new(),
                _ => return None,
            };
            Some((k, s))
        })
        .collect())
}

/// A Go `time.Duration` as written in YAML: `"30s"`, `1h`, `10m`, `1h30m`, `500ms`; a bare
/// number is taken as seconds (a convenience; Go would read nanoseconds, which nobody means).
fn go_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses Go's duration syntax (units ns, us, µs, ms, s, m, h; concatenated; decimals allowed).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. 30s, 10m, 1h30m, 500ms)");
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = r#"
server:
  port: 8080
  host: "0.0.0.0"
  metricsPort: 9090
  healthPort: 8081
  readTimeout: 30s
  writeTimeout: 30s
  signerCertDir: /etc/signing-certs
  tls:
    certDir: /etc/tls
database:
  host: postgresql.kubernaut-system.svc.cluster.local
  port: 5432
  name: action_history
  user: slm_user
  sslMode: disable
  maxOpenConns: 100
  maxIdleConns: 20
  connMaxLifetime: 1h
  connMaxIdleTime: 10m
  secretsFile: /etc/datastorage/secrets/db-secrets.yaml
  usernameKey: username
  passwordKey: password
redis:
  addr: redis.kubernaut-system.svc.cluster.local:6379
  db: 0
  dlqStreamName: dlq-stream
  dlqMaxLen: 1000
  dlqConsumerGroup: dlq-group
  secretsFile: /etc/datastorage/secrets/redis-secrets.yaml
  passwordKey: password
logging:
  level: debug
  format: json
"#;

    #[test]
    fn reads_the_upstream_config_and_ignores_unknown_keys() {
        let c = parse(UPSTREAM).unwrap();
        assert_eq!(c.server.port, 8080);
        assert_eq!(c.server.health_port, 8081);
        assert_eq!(c.server.read_timeout, Duration::from_secs(30));
        assert_eq!(c.server.tls.cert_dir, Path::new("/etc/tls"));
        assert_eq!(c.database.conn_max_lifetime, Duration::from_secs(3600));
        assert_eq!(c.database.conn_max_idle_time, Duration::from_secs(600));
        assert_eq!(
            c.redis.addr,
            "redis.kubernaut-system.svc.cluster.local:6379"
        );
        assert_eq!(c.logging.level, "debug");
    }

    #[test]
    fn missing_keys_take_the_defaults() {
        let c = parse("database:\n  host: db\n").unwrap();
        assert_eq!(c.database.host, "db");
        assert_eq!(c.database.port, 5432);
        assert_eq!(c.server.port, 8080);
        assert_eq!(c.server.metrics_port, 9090);
        assert_eq!(c.server.tls.cert_dir, Path::new("/etc/tls"));
        assert_eq!(parse("").unwrap().server.health_port, 8081);
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("server:\n  port: eighty\n").unwrap_err();
        assert!(e.contains("server.port") || e.contains("port"), "{e}");
        let e = parse("server:\n  readTimeout: soon\n").unwrap_err();
        assert!(e.contains("soon"), "{e}");
        let e = parse("logging:\n  level: loud\n").unwrap_err();
        assert!(e.contains("logging.level"), "{e}");
        let e = parse("server:\n  healthPort: 8080\n").unwrap_err();
        assert!(e.contains("server.healthPort"), "{e}");
        let e = parse("database:\n  sslMode: require\n").unwrap_err();
        assert!(e.contains("sslMode"), "{e}");
        assert!(parse("server: [1, 2\n").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn credentials_come_from_the_secrets_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db-secrets.yaml");
        let redis = dir.path().join("redis-secrets.yaml");
        std::fs::write(&db, "username: slm_user\npassword: test_password\n").unwrap();
        std::fs::write(&redis, "password: \"\"\n").unwrap();
        let mut c = Config::default();
        c.database.user = "ignored".into();
        c.database.secrets_file = Some(db);
        c.redis.secrets_file = Some(redis.clone());
        let creds = c.credentials().unwrap();
        assert_eq!(creds.db_user, "slm_user");
        assert_eq!(creds.db_password, "test_password");
        assert_eq!(creds.redis_password, None);
        assert!(!format!("{creds:?}").contains("test_password"));

        std::fs::write(&redis, "password: s3cret\n").unwrap();
        assert_eq!(
            c.credentials().unwrap().redis_password.as_deref(),
            Some("s3cret")
        );

        c.redis.secrets_file = Some(dir.path().join("missing.yaml"));
        let e = c.credentials().unwrap_err();
        assert!(e.to_string().contains("missing.yaml"), "{e}");
    }
}
