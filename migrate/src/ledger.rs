//! The ledger of applied migrations, in sqlx's `_sqlx_migrations` layout (default) or goose's
//! `goose_db_version` layout, so that databases migrated by either tool are understood and
//! either tool understands ours.

use crate::error::Error;
use crate::source::Migration;
use sqlx::PgConnection;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// `_sqlx_migrations`: version, description, installed_on, success, checksum (SHA-384),
    /// execution_time (ns).
    #[default]
    Sqlx,
    /// `goose_db_version`: id, version_id, is_applied, tstamp, with the version-0 row. No
    /// checksums, so modified files cannot be detected.
    Goose,
}

pub const SQLX_TABLE: &str = "_sqlx_migrations";
pub const GOOSE_TABLE: &str = "goose_db_version";

/// goose's advisory lock id: crc32 (IEEE) of "goose".
pub const GOOSE_LOCK_ID: i64 = 4_097_083_626;

/// One applied migration as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub version: i64,
    /// sqlx ledger only.
    pub description: Option<String>,
    pub checksum: Option<Vec<u8>>,
    /// false only for rows written by other tools after a failure (sqlx's "dirty").
    pub success: bool,
    /// `YYYY-MM-DDTHH:MM:SSZ` (sqlx, UTC) or `YYYY-MM-DDTHH:MM:SS` (goose, server-local time).
    pub applied_at: String,
    /// Nanoseconds (sqlx ledger only; -1 when unknown).
    pub execution_ns: Option<i64>,
}

impl LedgerKind {
    /// The other layout (for noticing a database migrated with it).
    pub fn other(self) -> LedgerKind {
        match self {
            LedgerKind::Sqlx => LedgerKind::Goose,
            LedgerKind::Goose => LedgerKind::Sqlx,
        }
    }

    pub fn table(self) -> &'static str {
        match self {
            LedgerKind::Sqlx => SQLX_TABLE,
            LedgerKind::Goose => GOOSE_TABLE,
        }
    }

    /// The advisory lock id: sqlx's (per database) or goose's, so that our runs also exclude
    /// sqlx's and goose's own runners on the same database.
    pub fn lock_id(self, database: &str) -> i64 {
        match self {
            LedgerKind::Sqlx => 0x3d32_ad9e * i64::from(crc32(database.as_bytes())),
            LedgerKind::Goose => GOOSE_LOCK_ID,
        }
    }
}

/// SQL that puts a session back to how it was after connecting, and that may run inside a
/// transaction (unlike `DISCARD ALL`, and keeping the advisory lock and sqlx's prepared
/// statements): what one migration sets (`search_path`, `statement_timeout`, a role, temporary
/// tables) must not reach the next one or the ledger writes. Settings given at connect time
/// (`options=-c ...` in the URL) are what `RESET ALL` returns to, so they stay.
///
/// It also asks the server (PostgreSQL 14+, where the setting exists; a no-op before) to check
/// every second during a long statement that the client is still there: if migrate is killed
/// outright, the server then stops the statement, rolls back and drops the lock at once instead
/// of when the statement ends.
pub const RESET_SESSION: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
     UNLISTEN *; DISCARD PLANS; DISCARD SEQUENCES; DISCARD TEMP; \
     SELECT pg_catalog.set_config(name, '1s', false) FROM pg_catalog.pg_settings \
     WHERE name = 'client_connection_check_interval'";

/// Runs [`RESET_SESSION`].
pub async fn reset_session(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::raw_sql(RESET_SESSION)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| Error::db("resetting the session", &e))
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A ledger table at a known place: every statement names it schema-qualified, so a migration
/// that changes `search_path` (as `pg_dump -s` output does) cannot hide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub kind: LedgerKind,
    /// The schema holding the table (or where it will be created).
    pub schema: String,
    /// Whether the table exists.
    pub exists: bool,
}

impl Ledger {
    /// Finds the ledger table on the session's `search_path`; when missing, it goes into the
    /// first schema of the path (`current_schema()`), as an unqualified `CREATE TABLE` would.
    ///
    /// A missing sqlx ledger beside an existing `goose_db_version` (or the other way round) is
    /// refused: the database was migrated with the other layout, and reading it as empty would
    /// re-run every migration and leave a second, empty ledger behind.
    pub async fn locate(conn: &mut PgConnection, kind: LedgerKind) -> Result<Ledger, Error> {
        let ctx = format!("looking for the ledger table {}", kind.table());
        let (found, current, other): (Option<String>, Option<String>, bool) = sqlx::query_as(
            "SELECT (SELECT n.nspname::text FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.oid = pg_catalog.to_regclass($1)), \
                    pg_catalog.current_schema()::text, \
                    pg_catalog.to_regclass($2) IS NOT NULL",
        )
        .bind(kind.table())
        .bind(kind.other().table())
        .fetch_one(conn)
        .await
        .map_err(|e| Error::db(&ctx, &e))?;
        if let Some(schema) = found {
            return Ok(Ledger {
                kind,
                schema,
                exists: true,
            });
        }
        if other {
            return Err(Error::Refused(match kind {
                LedgerKind::Sqlx => "this database was migrated with goose: it has goose_db_version but no _sqlx_migrations. \
                     Pass --ledger goose (MIGRATE_LEDGER=goose) to use goose's ledger; nothing was changed"
                    .to_string(),
                LedgerKind::Goose => "this database has sqlx's _sqlx_migrations but no goose_db_version. \
                     Pass --ledger sqlx (MIGRATE_LEDGER=sqlx, the default) to use it; nothing was changed"
                    .to_string(),
            }));
        }
        let Some(schema) = current else {
            return Err(Error::Config(format!(
                "the ledger table {} does not exist and the session has no schema to create it in \
                 (search_path is empty or names no existing schema); set search_path for this user or database, \
                 or add options=-csearch_path%3Dpublic to the URL",
                kind.table()
            )));
        };
        Ok(Ledger {
            kind,
            schema,
            exists: false,
        })
    }

    /// `"schema"."table"`.
    pub fn qualified(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(self.kind.table())
        )
    }

    /// Creates the table when missing (goose: with its version-0 row, in one transaction).
    pub async fn ensure(&mut self, conn: &mut PgConnection) -> Result<(), Error> {
        if self.exists {
            return Ok(());
        }
        let t = self.qualified();
        let ctx = format!("creating the ledger table {t}");
        let sql = match self.kind {
            LedgerKind::Sqlx => format!(
                "CREATE TABLE IF NOT EXISTS {t} (\n    version BIGINT PRIMARY KEY,\n    description TEXT NOT NULL,\n    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),\n    success BOOLEAN NOT NULL,\n    checksum BYTEA NOT NULL,\n    execution_time BIGINT NOT NULL\n);"
            ),
            LedgerKind::Goose => format!(
                "BEGIN;\nCREATE TABLE {t} (\n\t\tid integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,\n\t\tversion_id bigint NOT NULL,\n\t\tis_applied boolean NOT NULL,\n\t\ttstamp timestamp NOT NULL DEFAULT now()\n\t);\nINSERT INTO {t} (version_id, is_applied) VALUES (0, true);\nCOMMIT;"
            ),
        };
        sqlx::raw_sql(&sql)
            .execute(&mut *conn)
            .await
            .map_err(|e| Error::db(&ctx, &e))?;
        self.exists = true;
        Ok(())
    }

    /// Applied migrations, by version (empty when the table does not exist).
    pub async fn applied(&self, conn: &mut PgConnection) -> Result<Vec<Row>, Error> {
        if !self.exists {
            return Ok(Vec::new());
        }
        let t = self.qualified();
        let ctx = format!("reading the ledger table {t}");
        match self.kind {
            LedgerKind::Sqlx => {
                let sql = format!(
                    "SELECT version, description, success, checksum, \
                     to_char(installed_on AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                     execution_time FROM {t} ORDER BY version"
                );
                let rows: Vec<(i64, String, bool, Vec<u8>, String, i64)> = sqlx::query_as(&sql)
                    .fetch_all(conn)
                    .await
                    .map_err(|e| Error::db(&ctx, &e))?;
                Ok(rows
                    .into_iter()
                    .map(|(version, d, success, c, at, ns)| Row {
                        version,
                        description: Some(d),
                        checksum: Some(c),
                        success,
                        applied_at: at,
                        execution_ns: Some(ns),
                    })
                    .collect())
            }
            LedgerKind::Goose => {
                // The latest row of each version decides (old goose versions recorded a Down
                // as an is_applied=false row).
                let sql = format!(
                    "SELECT DISTINCT ON (version_id) version_id, is_applied, \
                     to_char(tstamp, 'YYYY-MM-DD\"T\"HH24:MI:SS') \
                     FROM {t} WHERE version_id <> 0 \
                     ORDER BY version_id, id DESC"
                );
                let rows: Vec<(i64, bool, String)> = sqlx::query_as(&sql)
                    .fetch_all(conn)
                    .await
                    .map_err(|e| Error::db(&ctx, &e))?;
                Ok(rows
                    .into_iter()
                    .filter(|r| r.1)
                    .map(|(version, _, at)| Row {
                        version,
                        description: None,
                        checksum: None,
                        success: true,
                        applied_at: at,
                        execution_ns: None,
                    })
                    .collect())
            }
        }
    }

    /// Whether goose's version-0 row is there (goose refuses a table without it).
    pub async fn goose_zero_row(&self, conn: &mut PgConnection) -> Result<bool, Error> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE version_id = 0)",
            self.qualified()
        );
        sqlx::query_scalar::<_, bool>(&sql)
            .fetch_one(conn)
            .await
            .map_err(|e| Error::db("reading goose_db_version", &e))
    }

    /// Records `m` as applied (call inside the migration's transaction when it has one).
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        m: &Migration,
        elapsed: Duration,
    ) -> Result<(), Error> {
        let t = self.qualified();
        let ctx = format!("recording {} in {t}", m.name);
        let sql = match self.kind {
            LedgerKind::Sqlx => format!(
                "INSERT INTO {t} (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, TRUE, $3, $4)"
            ),
            LedgerKind::Goose => {
                format!("INSERT INTO {t} (version_id, is_applied) VALUES ($1, $2)")
            }
        };
        let r = match self.kind {
            LedgerKind::Sqlx => {
                sqlx::query(&sql)
                    .bind(m.version)
                    .bind(&m.description)
                    .bind(&m.checksum)
                    .bind(i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
                    .execute(conn)
                    .await
            }
            LedgerKind::Goose => {
                sqlx::query(&sql)
                    .bind(m.version)
                    .bind(true)
                    .execute(conn)
                    .await
            }
        };
        r.map(|_| ()).map_err(|e| Error::db(&ctx, &e))
    }

    /// Removes `version` (after its Down section ran).
    pub async fn remove(&self, conn: &mut PgConnection, version: i64) -> Result<(), Error> {
        let t = self.qualified();
        let sql = match self.kind {
            LedgerKind::Sqlx => format!("DELETE FROM {t} WHERE version = $1"),
            LedgerKind::Goose => format!("DELETE FROM {t} WHERE version_id = $1"),
        };
        sqlx::query(&sql)
            .bind(version)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| Error::db(format!("removing version {version} from {t}"), &e))
    }
}

/// CRC-32 (IEEE 802.3 / ISO-HDLC), as sqlx uses for its lock id.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_goose_lock_id() {
        // goose documents its lock id as crc32("goose").
        assert_eq!(i64::from(crc32(b"goose")), GOOSE_LOCK_ID);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn sqlx_lock_id_is_per_database() {
        let a = LedgerKind::Sqlx.lock_id("a");
        assert_ne!(a, LedgerKind::Sqlx.lock_id("b"));
        assert_eq!(a, 0x3d32_ad9e * i64::from(crc32(b"a")));
        assert_eq!(LedgerKind::Goose.lock_id("x"), GOOSE_LOCK_ID);
    }
}
