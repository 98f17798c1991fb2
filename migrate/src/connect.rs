//! Connecting: a timeout, and failures turned into one clear line that never shows the
//! password (a server that is not PostgreSQL is named as such).

use crate::error::{describe_sqlx, Error};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;

/// Connects with a timeout, turning failures into one clear line that never shows the password.
pub async fn connect(url: &str, timeout: Duration) -> Result<PgConnection, Error> {
    let shown = crate::url::mask(url);
    // sqlx reads any scheme as PostgreSQL: `mysql://` would end in a misleading login error.
    if let Ok(u) = url::Url::parse(url) {
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(Error::Config(format!(
                "unsupported database URL scheme `{}://` in {shown}: migrate works with PostgreSQL only; use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                u.scheme()
            )));
        }
    }
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| {
            Error::Config(format!(
                "invalid database URL {shown}: {}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                strip_url(&e.to_string(), url)
            ))
        })?
        .application_name("migrate");
    let opts = sqlx::ConnectOptions::disable_statement_logging(opts);
    match tokio::time::timeout(timeout, PgConnection::connect_with(&opts)).await {
        Err(_) => Err(Error::Connect(match probe(&opts) {
            Some(Probe::Silent(at)) => format!(
                "cannot connect to {shown}: no answer within {timeout:.0?}: {at} accepts TCP connections but does not answer the PostgreSQL handshake, so it is not a PostgreSQL server (or a stuck one); check the host and port (or raise --connect-timeout)"
            ),
            Some(Probe::Foreign(at, why)) => not_postgres(&shown, &at, &why),
            None => format!(
                "cannot connect to {shown}: no answer within {timeout:.0?}; check the host and port, and that PostgreSQL is running and reachable (or raise --connect-timeout)"
            ),
        })),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e @ sqlx::Error::Database(_))) => {
            Err(Error::Connect(connect_error(&shown, &opts, &e)))
        }
        Ok(Err(e)) => Err(Error::Connect(match probe(&opts) {
            Some(Probe::Foreign(at, why)) => not_postgres(&shown, &at, &why),
            Some(Probe::Silent(at)) => not_postgres(
                &shown,
                &at,
                "it accepts TCP connections but never answered the PostgreSQL handshake",
            ),
            None => connect_error(&shown, &opts, &e),
        })),
    }
}

fn not_postgres(shown: &str, at: &str, why: &str) -> String {
    format!("cannot connect to {shown}: {at} is not a PostgreSQL server ({why}); check the host and port")
}

/// What a server that failed a connect says to the protocol's first question.
enum Probe {
    /// `host:port`, and what it did instead of answering as PostgreSQL does.
    Foreign(String, String),
    /// `host:port` took the TCP connection and said nothing.
    Silent(String),
}

/// After a connect that failed without a PostgreSQL error: asks the server the first question
/// of the protocol (an SSLRequest, which PostgreSQL answers at once with one byte, `S` or `N`).
/// None when it is PostgreSQL or cannot be asked (a Unix socket, no TCP connection).
fn probe(opts: &PgConnectOptions) -> Option<Probe> {
    use std::io::{Read, Write};
    let host = opts.get_host();
    if host.starts_with('/') {
        return None;
    }
    let port = opts.get_port();
    let wait = Duration::from_secs(1);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .next()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, wait).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).ok()?;
    let mut buf = [0u8; 80];
    let at = format!("{host}:{port}");
    let closed = "it closed the connection without answering the PostgreSQL handshake";
    match s.read(&mut buf) {
        Ok(1) if matches!(buf[0], b'S' | b'N') => None,
        Ok(n) if n > 0 && buf[0] == b'E' => None,
        Ok(0) => Some(Probe::Foreign(at, closed.into())),
        Ok(n) => Some(Probe::Foreign(
            at,
            format!("it answered `{}`", printable(&buf[..n])),
        )),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Some(Probe::Silent(at))
        }
        Err(_) => Some(Probe::Foreign(at, closed.into())),
    }
}

/// The first line of a foreign server's answer, printable.
fn printable(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let text: String = String::from_utf8_lossy(line)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .take(60)
        .collect();
    text.trim_end_matches('.').trim().to_string()
}

fn strip_url(msg: &str, url: &str) -> String {
    msg.replace(url, "<url>")
        .replace("error with configuration: ", "")
}

fn connect_error(shown: &str, opts: &PgConnectOptions, e: &sqlx::Error) -> String {
    let user = opts.get_username();
    let db = opts.get_database().unwrap_or(user);
    match e {
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("28P01") => format!(
                "cannot connect to {shown}: password authentication failed for user `{user}`; check the password in --database-url / DATABASE_URL"
            ),
            Some("28000") => format!(
                "cannot connect to {shown}: the server refused user `{user}` ({}); check the user name and pg_hba.conf",
                d.message()
            ),
            Some("3D000") => format!(
                "cannot connect to {shown}: database `{db}` does not exist; create it (createdb {db}) or fix the database name"
            ),
            _ => format!("cannot connect to {shown}: {}", describe_sqlx(e)),
        },
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "cannot connect to {shown}: connection refused; is PostgreSQL running and listening on {}:{}?",
            opts.get_host(),
            opts.get_port()
        ),
        sqlx::Error::Tls(t) => format!(
            "cannot connect to {shown}: TLS: {t}; this build has no TLS support, use sslmode=disable or sslmode=prefer"
        ),
        other => format!("cannot connect to {shown}: {}", describe_sqlx(other)),
    }
}
