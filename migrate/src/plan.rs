//! What a run would do, decided from the files and the ledger rows alone: the refusals and
//! the order of `up`, the choice of `down`, and `status`. No database here, so it is tested
//! directly.

use crate::error::Error;
use crate::ledger::{LedgerKind, Row};
use crate::source::{Migration, MigrationSet, Section};
use std::time::Duration;

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub ledger: LedgerKind,
    /// How long to wait for another run's advisory lock.
    pub lock_timeout: Duration,
    /// Apply unapplied migrations older than the newest applied one (goose's -allow-missing).
    pub allow_out_of_order: bool,
    /// Apply even when applied files were edited (checksum mismatch).
    pub ignore_checksum: bool,
    /// Do not fail when the ledger has versions with no file.
    pub ignore_missing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ledger: LedgerKind::Sqlx,
            lock_timeout: Duration::from_secs(120),
            allow_out_of_order: false,
            ignore_checksum: false,
            ignore_missing: false,
        }
    }
}

/// Which migrations `down` reverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// The newest K applied migrations.
    Steps(usize),
    /// Every applied migration with a version above N (0: all).
    To(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file's Up section changed since (checksum differs).
    Modified,
    /// In the ledger, but no file has this version.
    Missing,
    /// Recorded with success = false by another tool: partially applied.
    Dirty,
}

/// One line of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    pub version: i64,
    /// File name (None for a missing migration).
    pub name: Option<String>,
    pub description: String,
    pub state: State,
    pub applied_at: Option<String>,
    pub execution_ms: Option<f64>,
    /// A pending migration older than the newest applied one.
    pub out_of_order: bool,
    pub no_transaction: bool,
}

/// What `up` or `down` would do (dry run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    pub version: i64,
    pub name: String,
    pub no_transaction: bool,
    pub statements: usize,
}

/// The migrations `up` would apply given the ledger `rows`, after every refusal check.
pub(crate) fn pending<'s>(
    set: &'s MigrationSet,
    o: &Options,
    rows: &[Row],
    to: Option<i64>,
) -> Result<Vec<&'s Migration>, Error> {
    if let Some(r) = rows.iter().find(|r| !r.success) {
        return Err(Error::Refused(format!(
            "version {} is marked as failed (success = false) in {}: it was partially applied by another tool. Repair the schema by hand, delete that row, and run again",
            r.version,
            o.ledger.table()
        )));
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| set.get(r.version).is_none())
        .map(|r| r.version.to_string())
        .collect();
    if !missing.is_empty() && !o.ignore_missing {
        return Err(Error::Refused(format!(
            "the database has applied version{} {} with no file in {}; this checkout is older than the database, or files were renamed. Use the right --dir, or --ignore-missing (MIGRATE_IGNORE_MISSING=1) to go on",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            set.dir.display()
        )));
    }
    if !o.ignore_checksum {
        let modified: Vec<&str> = rows
            .iter()
            .filter_map(|r| {
                let m = set.get(r.version)?;
                let c = r.checksum.as_ref()?;
                (c != &m.checksum).then_some(m.name.as_str())
            })
            .collect();
        if !modified.is_empty() {
            return Err(Error::Refused(format!(
                "refusing to migrate: the Up section of applied migration{} {} changed since {} applied (checksum mismatch). Restore the file{} and put the change in a new migration, or pass --ignore-checksum (MIGRATE_IGNORE_CHECKSUM=1) if the edit is harmless",
                if modified.len() == 1 { "" } else { "s" },
                modified.join(", "),
                if modified.len() == 1 { "it was" } else { "they were" },
                if modified.len() == 1 { "" } else { "s" },
            )));
        }
    }
    let applied: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
    let max = applied.iter().next_back().copied().unwrap_or(0);
    let pending: Vec<&'s Migration> = set
        .migrations
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .filter(|m| to.is_none_or(|t| m.version <= t))
        .collect();
    let older: Vec<&str> = pending
        .iter()
        .filter(|m| m.version < max)
        .map(|m| m.name.as_str())
        .collect();
    if !older.is_empty() && !o.allow_out_of_order {
        return Err(Error::Refused(format!(
            "found {} unapplied migration{} older than the newest applied version {max}: {}. Renumber {} after {max}, or pass --allow-out-of-order (MIGRATE_ALLOW_OUT_OF_ORDER=1) to apply {} anyway",
            older.len(),
            if older.len() == 1 { "" } else { "s" },
            older.join(", "),
            if older.len() == 1 { "it" } else { "them" },
            if older.len() == 1 { "it" } else { "them" },
        )));
    }
    Ok(pending)
}

/// The migrations `down` reverts for `target`, newest first; refused as a whole when one
/// cannot be reverted.
pub(crate) fn to_revert<'s>(
    set: &'s MigrationSet,
    rows: &[Row],
    target: DownTarget,
) -> Result<Vec<&'s Migration>, Error> {
    let mut versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    let chosen: Vec<i64> = match target {
        DownTarget::Steps(k) => versions.into_iter().take(k).collect(),
        DownTarget::To(n) => versions.into_iter().filter(|&v| v > n).collect(),
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for v in chosen {
        match set.get(v) {
            None => problems.push(format!(
                "version {v} is applied but has no file in {}",
                set.dir.display()
            )),
            Some(m) if m.down.is_none() => {
                problems.push(format!("{} has no Down section (`-- +goose Down`)", m.name))
            }
            Some(m) => out.push(m),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused(format!(
            "cannot revert, nothing was changed: {}",
            problems.join("; ")
        )));
    }
    Ok(out)
}

/// Every file and every ledger row, by version.
pub(crate) fn status(set: &MigrationSet, rows: &[Row]) -> Vec<StatusRow> {
    let max = rows.iter().map(|r| r.version).max().unwrap_or(0);
    let mut out: Vec<StatusRow> = Vec::new();
    for m in &set.migrations {
        let row = rows.iter().find(|r| r.version == m.version);
        let state = match row {
            None => State::Pending,
            Some(r) if !r.success => State::Dirty,
            Some(r) if r.checksum.as_ref().is_some_and(|c| c != &m.checksum) => State::Modified,
            Some(_) => State::Applied,
        };
        out.push(StatusRow {
            version: m.version,
            name: Some(m.name.clone()),
            description: m.description.clone(),
            state,
            applied_at: row.map(|r| r.applied_at.clone()),
            execution_ms: row.and_then(exec_ms),
            out_of_order: row.is_none() && m.version < max,
            no_transaction: m.no_tx,
        });
    }
    for r in rows.iter().filter(|r| set.get(r.version).is_none()) {
        out.push(StatusRow {
            version: r.version,
            name: None,
            description: r.description.clone().unwrap_or_default(),
            state: State::Missing,
            applied_at: Some(r.applied_at.clone()),
            execution_ms: exec_ms(r),
            out_of_order: false,
            no_transaction: false,
        });
    }
    out.sort_by_key(|r| r.version);
    out
}

pub(crate) fn planned(m: &Migration, sec: &Section) -> Planned {
    Planned {
        version: m.version,
        name: m.name.clone(),
        no_transaction: m.no_tx,
        statements: sec.statements().len(),
    }
}

fn exec_ms(r: &Row) -> Option<f64> {
    r.execution_ns
        .filter(|&n| n >= 0)
        .map(|n| (n as f64 / 1e3).round() / 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of goose files 001..=n, each with an Up and (but for `no_down`) a Down.
    fn set(n: i64, no_down: &[i64]) -> (tempfile::TempDir, MigrationSet) {
        let dir = tempfile::tempdir().unwrap();
        for v in 1..=n {
            let down = if no_down.contains(&v) {
                String::new()
            } else {
                format!("-- +goose Down\nDROP TABLE t{v};\n")
            };
            let text = format!("-- +goose Up\nCREATE TABLE t{v} (x int);\n{down}");
            std::fs::write(dir.path().join(format!("{v:03}_t{v}.sql")), text).unwrap();
        }
        let set = MigrationSet::load_with_env(dir.path(), &|_| None).unwrap();
        (dir, set)
    }

    /// The ledger row of migration `v` as this run would write it.
    fn row(set: &MigrationSet, v: i64) -> Row {
        Row {
            version: v,
            description: Some(format!("t{v}")),
            checksum: set.get(v).map(|m| m.checksum.clone()),
            success: true,
            applied_at: "2026-12-01T00:00:00Z".into(),
            execution_ns: Some(1_500_000),
        }
    }

    fn versions(ms: &[&Migration]) -> Vec<i64> {
        ms.iter().map(|m| m.version).collect()
    }

    fn refusal(r: Result<Vec<&Migration>, Error>) -> String {
        match r {
            Err(Error::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn pending_is_what_the_ledger_lacks_in_version_order_up_to_to() {
        let (_d, s) = set(4, &[]);
        let o = Options::default();
        assert_eq!(versions(&pending(&s, &o, &[], None).unwrap()), [1, 2, 3, 4]);
        let rows = [row(&s, 1), row(&s, 2)];
        assert_eq!(versions(&pending(&s, &o, &rows, None).unwrap()), [3, 4]);
        assert_eq!(versions(&pending(&s, &o, &rows, Some(3)).unwrap()), [3]);
        assert!(pending(&s, &o, &rows, Some(2)).unwrap().is_empty());
        let all: Vec<Row> = (1..=4).map(|v| row(&s, v)).collect();
        assert!(pending(&s, &o, &all, None).unwrap().is_empty());
    }

    #[test]
    fn a_row_marked_failed_is_refused_even_with_every_override() {
        let (_d, s) = set(2, &[]);
        let mut dirty = row(&s, 1);
        dirty.success = false;
        let o = Options {
            allow_out_of_order: true,
            ignore_checksum: true,
            ignore_missing: true,
            ..Options::default()
        };
        let msg = refusal(pending(&s, &o, &[dirty], None));
        assert!(msg.contains("version 1 is marked as failed"), "{msg}");
        assert!(msg.contains("_sqlx_migrations"), "{msg}");
    }

    #[test]
    fn applied_versions_without_a_file_are_refused_unless_ignored() {
        let (_d, s) = set(2, &[]);
        let mut rows = vec![row(&s, 1), row(&s, 2), row(&s, 7), row(&s, 9)];
        rows[2].checksum = None;
        rows[3].checksum = None;
        let msg = refusal(pending(&s, &Options::default(), &rows, None));
        assert!(msg.contains("applied versions 7, 9 with no file"), "{msg}");
        let o = Options {
            ignore_missing: true,
            ..Options::default()
        };
        assert!(pending(&s, &o, &rows, None).unwrap().is_empty());
    }

    #[test]
    fn an_edited_up_section_is_refused_unless_ignored_and_no_checksum_is_no_edit() {
        let (_d, s) = set(3, &[]);
        let mut rows = vec![row(&s, 1), row(&s, 2)];
        rows[1].checksum = Some(vec![0; 48]);
        let msg = refusal(pending(&s, &Options::default(), &rows, None));
        assert!(
            msg.contains("applied migration 002_t2.sql changed"),
            "{msg}"
        );
        let o = Options {
            ignore_checksum: true,
            ..Options::default()
        };
        assert_eq!(versions(&pending(&s, &o, &rows, None).unwrap()), [3]);
        // goose's ledger keeps no checksum: nothing to compare.
        rows[1].checksum = None;
        let got = pending(&s, &Options::default(), &rows, None).unwrap();
        assert_eq!(versions(&got), [3]);
    }

    #[test]
    fn older_unapplied_files_are_refused_unless_out_of_order_is_allowed() {
        let (_d, s) = set(4, &[]);
        let rows = [row(&s, 1), row(&s, 3)];
        let msg = refusal(pending(&s, &Options::default(), &rows, None));
        assert!(
            msg.contains(
                "1 unapplied migration older than the newest applied version 3: 002_t2.sql"
            ),
            "{msg}"
        );
        let o = Options {
            allow_out_of_order: true,
            ..Options::default()
        };
        assert_eq!(versions(&pending(&s, &o, &rows, None).unwrap()), [2, 4]);
        // `--to` does not lift the refusal: 2 is still older than the applied 3.
        assert!(pending(&s, &Options::default(), &rows, Some(2)).is_err());
    }

    #[test]
    fn down_reverts_newest_first_and_refuses_as_a_whole() {
        let (_d, s) = set(4, &[2]);
        let rows: Vec<Row> = (1..=4).map(|v| row(&s, v)).collect();
        let steps = to_revert(&s, &rows, DownTarget::Steps(2)).unwrap();
        assert_eq!(versions(&steps), [4, 3]);
        let msg = refusal(to_revert(&s, &rows, DownTarget::To(1)));
        assert!(msg.contains("002_t2.sql has no Down section"), "{msg}");
        assert!(to_revert(&s, &rows, DownTarget::To(4)).unwrap().is_empty());
    }

    #[test]
    fn status_names_every_file_and_every_row() {
        let (_d, s) = set(3, &[]);
        let mut rows = vec![row(&s, 1), row(&s, 3), row(&s, 5)];
        rows[1].checksum = Some(vec![1; 48]);
        rows[2].checksum = None;
        let st = status(&s, &rows);
        let got: Vec<(i64, State, bool)> = st
            .iter()
            .map(|r| (r.version, r.state, r.out_of_order))
            .collect();
        assert_eq!(
            got,
            [
                (1, State::Applied, false),
                (2, State::Pending, true),
                (3, State::Modified, false),
                (5, State::Missing, false)
            ]
        );
        assert_eq!(st[0].execution_ms, Some(1.5));
        assert_eq!(st[3].name, None);
    }
}
