//! What the service tests share: a running service process, a per-test database, test
//! certificates, and a small HTTP/1.1 client (plain, or TLS verified against a given CA).

// Each test binary (service.rs, image.rs) compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::Value;
use sqlx::{Connection, PgConnection};

pub const BIN: &str = env!("CARGO_BIN_EXE_datastorage-example");

/// The example migrations (`examples/migrations`).
pub fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations")
}

/// A database of its own for one test, dropped (with its connections) when the guard goes.
pub struct TestDb {
    pub admin_url: String,
    pub name: String,
}

impl TestDb {
    pub async fn create(admin_url: &str) -> TestDb {
        let name = e2e_testbed::unique_name("dsx").replace('-', "_");
        let mut conn = PgConnection::connect(admin_url)
            .await
            .expect("connect to the testbed PostgreSQL");
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        TestDb {
            admin_url: admin_url.to_string(),
            name,
        }
    }

    /// The admin URL pointed at this test's database.
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&self.admin_url).expect("E2E_DATABASE_URL is a URL");
        url.set_path(&self.name);
        url.to_string()
    }

    /// `(host, port, user, password)` of the admin URL, for the service's config and secrets.
    pub fn parts(&self) -> (String, u16, String, String) {
        let url = url::Url::parse(&self.admin_url).expect("E2E_DATABASE_URL is a URL");
        (
            url.host_str().unwrap_or("127.0.0.1").to_string(),
            url.port().unwrap_or(5432),
            url.username().to_string(),
            url.password().unwrap_or_default().to_string(),
        )
    }

    pub async fn migrate_up(&self) -> Vec<String> {
        let set = migrate::MigrationSet::load(migrations_dir()).expect("load examples/migrations");
        let mut conn = migrate::connect(&self.url(), Duration::from_secs(5))
            .await
            .expect("connect");
        migrate::Migrator::new(set, migrate::Options::default())
            .up(&mut conn, None)
            .await
            .expect("migrate up")
            .into_iter()
            .map(|a| a.name)
            .collect()
    }

    pub async fn migrate_down_all(&self) -> Vec<String> {
        self.migrate_down(migrate::DownTarget::To(0)).await
    }

    pub async fn migrate_down(&self, target: migrate::DownTarget) -> Vec<String> {
        let set = migrate::MigrationSet::load(migrations_dir()).expect("load examples/migrations");
        let mut conn = migrate::connect(&self.url(), Duration::from_secs(5))
            .await
            .expect("connect");
        migrate::Migrator::new(set, migrate::Options::default())
            .down(&mut conn, target)
            .await
            .expect("migrate down")
            .into_iter()
            .map(|a| a.name)
            .collect()
    }

    /// One boolean query on this database.
    pub async fn ask(&self, sql: &str) -> bool {
        let mut conn = PgConnection::connect(&self.url()).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The tables of schema `public`, sorted.
    pub async fn tables(&self) -> Vec<String> {
        let mut conn = PgConnection::connect(&self.url()).await.expect("connect");
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("list tables")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; a thread with its own runtime can block on it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&url).await {
                    let _ =
                        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// `host:port` of a `redis://host:port/db` URL.
pub fn redis_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// A test CA and a leaf for `localhost` / 127.0.0.1 signed by it, written as `tls.crt`/`tls.key`.
pub struct TestCerts {
    pub ca_pem: String,
}

/// Which PEM form the leaf's key is written in.
#[derive(Clone, Copy)]
pub enum KeyForm {
    /// `PRIVATE KEY`, what rcgen writes.
    Pkcs8,
    /// `EC PRIVATE KEY`, what upstream's Go helpers write.
    Sec1,
}

impl TestCerts {
    pub fn write(dir: &Path, form: KeyForm) -> TestCerts {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "datastorage-example test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "data-storage-service");
        let leaf = leaf_params
            .signed_by(&leaf_key, &issuer)
            .expect("leaf cert");

        let key_pem = match form {
            KeyForm::Pkcs8 => leaf_key.serialize_pem(),
            KeyForm::Sec1 => pem(
                "EC PRIVATE KEY",
                &sec1_from_pkcs8(&leaf_key.serialize_der()),
            ),
        };
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("tls.crt"), leaf.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), key_pem).unwrap();
        TestCerts {
            ca_pem: ca_cert.pem(),
        }
    }
}

/// The ECPrivateKey inside a PKCS#8 PrivateKeyInfo: its `privateKey` OCTET STRING, the third
/// element of the outer SEQUENCE.
fn sec1_from_pkcs8(der: &[u8]) -> Vec<u8> {
    fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, head) = if b[1] < 0x80 {
            (b[1] as usize, 2)
        } else {
            let n = (b[1] & 0x7f) as usize;
            (
                b[2..2 + n].iter().fold(0, |a, &x| (a << 8) | x as usize),
                2 + n,
            )
        };
        (tag, &b[head..head + len], &b[head + len..])
    }
    let (_, seq, _) = tlv(der);
    let (_, _version, rest) = tlv(seq);
    let (_, _algorithm, rest) = tlv(rest);
    let (tag, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "PKCS#8 privateKey is an OCTET STRING");
    key.to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, &b| (a << 8) | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

/// The files a service needs: config.yaml, secrets, a cert dir; ports 0 (the OS picks, the
/// service logs them).
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub db_host: String,
    pub db_port: u16,
    pub db_name: String,
    pub db_user: String,
    pub db_password: String,
    pub redis_addr: String,
}

impl Setup {
    pub fn new(db: &TestDb, redis_url: &str) -> Setup {
        let (host, port, user, password) = db.parts();
        Setup {
            dir: tempfile::tempdir().unwrap(),
            db_host: host,
            db_port: port,
            db_name: db.name.clone(),
            db_user: user,
            db_password: password,
            redis_addr: redis_addr(redis_url),
        }
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// Writes config.yaml (the upstream shape, with the unknown keys upstream has) and the two
    /// secrets files; returns the config path.
    pub fn write(&self) -> PathBuf {
        let d = self.dir.path();
        let db_secrets = d.join("db-secrets.yaml");
        let redis_secrets = d.join("redis-secrets.yaml");
        std::fs::write(
            &db_secrets,
            format!(
                "username: {}\npassword: {}\n",
                self.db_user, self.db_password
            ),
        )
        .unwrap();
        std::fs::write(&redis_secrets, "password: \"\"\n").unwrap();
        let config = format!(
            r#"server:
  port: 0
  host: "127.0.0.1"
  metricsPort: 0
  healthPort: 0
  readTimeout: 30s
  writeTimeout: 30s
  signerCertDir: {signer}
  tls:
    certDir: {certs}
database:
  host: {host}
  port: {port}
  name: {name}
  user: slm_user
  sslMode: disable
  maxOpenConns: 10
  maxIdleConns: 2
  connMaxLifetime: 1h
  connMaxIdleTime: 10m
  secretsFile: {db_secrets}
  usernameKey: username
  passwordKey: password
redis:
  addr: {redis}
  db: 0
  dlqStreamName: dlq-stream
  dlqMaxLen: 1000
  dlqConsumerGroup: dlq-group
  secretsFile: {redis_secrets}
  passwordKey: password
logging:
  level: debug
  format: json
"#,
            signer = d.join("signing").display(),
            certs = self.cert_dir().display(),
            host = self.db_host,
            port = self.db_port,
            name = self.db_name,
            db_secrets = db_secrets.display(),
            redis = self.redis_addr,
            redis_secrets = redis_secrets.display(),
        );
        let path = d.join("config.yaml");
        std::fs::write(&path, config).unwrap();
        path
    }
}

/// A running service; killed when dropped.
pub struct Service {
    child: Child,
    pub api: String,
    pub health: String,
    pub metrics: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts the binary and waits for its `listening` log line (with the ports it bound).
    pub fn start(config: &Path) -> Service {
        let mut child = Command::new(BIN)
            .env("CONFIG_PATH", config)
            .env("POD_NAMESPACE", "dsx-test")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start datastorage-example");
        let stdout = child.stdout.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("service: {line}");
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                // Exited early or hung: reap it, then fail with what it logged.
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "no `listening` line within 15 s (exit: {status:?}); log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["msg"] == "listening" {
                let field = |k: &str| {
                    v[k].as_str()
                        .expect("listening line has the URLs")
                        .to_string()
                };
                return Service {
                    api: field("api"),
                    health: field("health"),
                    metrics: field("metrics"),
                    child,
                    log,
                };
            }
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM, then the exit status (within `limit`).
    pub fn terminate(mut self, limit: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request (`Connection: close`). `https://` URLs are verified against `ca_pem`
/// (and only it); an error is the handshake's or the connection's.
pub fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
    ca_pem: Option<&str>,
) -> Result<Response, String> {
    let (scheme, rest) = url.split_once("://").expect("absolute URL");
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let tcp = TcpStream::connect(authority).map_err(|e| format!("connect {authority}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or_default());

    let raw = if scheme == "https" {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = ca_pem {
            for cert in rustls_pemfile::certs(&mut ca.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(req.as_bytes())
            .map_err(|e| format!("TLS: {e}"))?;
        read_all(&mut tls)?
    } else {
        let mut tcp = tcp;
        tcp.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        read_all(&mut tcp)?
    };
    parse_response(&raw)
}

/// Reads to the end; a peer that closes without TLS close_notify still gave a full response.
fn read_all(r: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    match r.read_to_end(&mut buf) {
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => Ok(buf),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response { status, body })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Polls `url` until it answers `status` (or `limit` passes); returns the last response.
pub fn wait_for_status(url: &str, status: u16, limit: Duration) -> Response {
    let deadline = Instant::now() + limit;
    loop {
        let r = request("GET", url, None, None);
        match r {
            Ok(r) if r.status == status => return r,
            other if Instant::now() >= deadline => {
                panic!("{url} did not answer {status} within {limit:?}; last: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The value of an unlabelled metric in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
