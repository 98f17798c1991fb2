//! PostgreSQL and Redis, and the readiness verdict built from them.
//!
//! Neither is connected at startup: in a bundle the pod may start before either answers, and a
//! process that blocks (or exits) waiting for them would only add restarts. The pool connects
//! lazily with a short acquire timeout, Redis reconnects on demand, and readiness is re-checked
//! on every probe and by a background loop that logs when it changes.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::config::{Config, Credentials};

/// How long one attempt to reach a backend may take; probes time out after 3 s upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one readiness check may take: under the kubelet's 3 s probe timeout with room to
/// spare, so a dead backend shows as a 503 with a reason rather than a probe timeout.
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

/// The tables the migrations must have created before the service can work (the upstream
/// `VerifyMigrations` list).
pub const REQUIRED_TABLES: &[&str] = &["audit_events", "notification_audit"];

pub struct Backends {
    pub pg: PgPool,
    redis_client: redis::Client,
    /// One multiplexed connection shared by all requests, replaced after an error.
    redis_conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
    /// `host:port` / database, for log lines and readiness reasons.
    pub pg_target: String,
    pub redis_target: String,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub postgres: Result<(), String>,
    pub migrations: Result<(), String>,
    pub redis: Result<(), String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.postgres.is_ok() && self.migrations.is_ok() && self.redis.is_ok()
    }

    /// The first reason the service is not ready, for the 503 body and the log.
    pub fn reason(&self) -> Option<String> {
        [&self.postgres, &self.migrations, &self.redis]
            .into_iter()
            .find_map(|r| r.as_ref().err().cloned())
    }
}

impl Backends {
    pub fn new(config: &Config, creds: &Credentials) -> Result<Backends, String> {
        let db = &config.database;
        let options = PgConnectOptions::new()
            .host(&db.host)
            .port(db.port)
            .database(&db.name)
            .username(&creds.db_user)
            .password(&creds.db_password)
            .ssl_mode(PgSslMode::Disable)
            .application_name("datastorage-example");
        let pg = PgPoolOptions::new()
            .max_connections(db.max_open_conns.max(1))
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout((!db.conn_max_idle_time.is_zero()).then_some(db.conn_max_idle_time))
            .max_lifetime((!db.conn_max_lifetime.is_zero()).then_some(db.conn_max_lifetime))
            .connect_lazy_with(options);

        let (host, port) = config
            .redis
            .addr
            .rsplit_once(':')
            .ok_or_else(|| format!("redis.addr {:?} must be host:port", config.redis.addr))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("redis.addr {:?}: bad port", config.redis.addr))?;
        let mut redis_settings = redis::RedisConnectionInfo::default().set_db(config.redis.db);
        if let Some(password) = &creds.redis_password {
            redis_settings = redis_settings.set_password(password);
        }
        let info = redis::IntoConnectionInfo::into_connection_info((host.to_string(), port))
            .map_err(|e| format!("redis.addr: {e}"))?
            .set_redis_settings(redis_settings);
        let redis_client = redis::Client::open(info).map_err(|e| format!("redis: {e}"))?;

        Ok(Backends {
            pg,
            redis_client,
            redis_conn: Mutex::new(None),
            pg_target: format!("{}:{}/{}", db.host, db.port, db.name),
            redis_target: config.redis.addr.clone(),
        })
    }

    /// Checks PostgreSQL, the migrated tables and Redis concurrently.
    pub async fn readiness(&self) -> Readiness {
        let (pg, redis) = tokio::join!(
            within(
                READY_CHECK_TIMEOUT,
                "PostgreSQL",
                &self.pg_target,
                self.check_postgres()
            ),
            within(
                READY_CHECK_TIMEOUT,
                "Redis",
                &self.redis_target,
                self.ping_redis()
            )
        );
        let (postgres, migrations) = match pg {
            Ok(Ok(())) => (Ok(()), Ok(())),
            Ok(Err(missing)) => (Ok(()), Err(missing)),
            Err(e) => (Err(e), Err("unknown (PostgreSQL unreachable)".into())),
        };
        Readiness {
            postgres,
            migrations,
            redis,
        }
    }

    /// Outer error: PostgreSQL does not answer. Inner error: it answers, tables are missing.
    async fn check_postgres(&self) -> Result<Result<(), String>, String> {
        let query = sqlx::query_scalar::<_, String>(
            "SELECT t FROM unnest($1::text[]) AS t WHERE to_regclass('public.' || t) IS NULL",
        )
        .bind(REQUIRED_TABLES)
        .fetch_all(&self.pg);
        let missing = tokio::time::timeout(CONNECT_TIMEOUT, query)
            .await
            .map_err(|_| {
                format!(
                    "PostgreSQL {}: no answer within {CONNECT_TIMEOUT:?}",
                    self.pg_target
                )
            })?
            .map_err(|e| format!("PostgreSQL {}: {e}", self.pg_target))?;
        if missing.is_empty() {
            Ok(Ok(()))
        } else {
            Ok(Err(format!(
                "migrations not applied: table {} missing",
                missing.join(", ")
            )))
        }
    }

    /// `PING`, reconnecting first when there is no healthy connection.
    pub async fn ping_redis(&self) -> Result<(), String> {
        let result = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut conn = self.redis_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {CONNECT_TIMEOUT:?}")));
        match result {
            Ok(pong) if pong == "PONG" => Ok(()),
            Ok(other) => Err(format!(
                "Redis {}: PING answered {other:?}",
                self.redis_target
            )),
            Err(e) => {
                // Drop the connection so the next check dials afresh.
                *self.redis_conn.lock().await = None;
                Err(format!("Redis {}: {e}", self.redis_target))
            }
        }
    }

    async fn redis_connection(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let mut slot = self.redis_conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let conn = self
            .redis_client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| e.to_string())?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Counts written events in Redis (`INCR datastorage:audit_events_written`), a small real
    /// use of the cache beside the readiness PING. Errors are returned for logging only: the
    /// event is already stored in PostgreSQL.
    pub async fn count_write_in_redis(&self) -> Result<i64, String> {
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut conn = self.redis_connection().await?;
            redis::cmd("INCR")
                .arg("datastorage:audit_events_written")
                .query_async::<i64>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {CONNECT_TIMEOUT:?}")))
    }
}

/// `f`, or an error naming the backend when it takes longer than `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    target: &str,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| Err(format!("{what} {target}: no answer within {limit:?}")))
}
