//! A failed statement as people need to see it: file, line, the statement, PostgreSQL's
//! message, detail, hint and context (a DO block's line mapped to the file's).

use crate::error::{describe_lost, Cause, Direction, Error, StatementError};
use crate::source::{Migration, Section};
use crate::split::Stmt;
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};

pub(crate) fn pg_error(e: &sqlx::Error) -> Option<&PgDatabaseError> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
}

pub(crate) fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

/// A statement error where PostgreSQL's position (if any) is relative to `stmt`'s text.
pub(crate) fn statement_error(
    m: &Migration,
    sec: &Section,
    dir: Direction,
    stmt: Option<&Stmt>,
    e: &sqlx::Error,
    partial: bool,
) -> Error {
    let off = match (stmt, pg_error(e).and_then(|p| p.position())) {
        (Some(s), Some(PgErrorPosition::Original(pos))) => {
            Some(s.start + char_to_byte(s.text(&sec.sql), pos.saturating_sub(1)))
        }
        _ => None,
    };
    statement_error_at(m, sec, dir, stmt, e, off, partial)
}

pub(crate) fn statement_error_at(
    m: &Migration,
    sec: &Section,
    dir: Direction,
    stmt: Option<&Stmt>,
    e: &sqlx::Error,
    error_off: Option<usize>,
    partial: bool,
) -> Error {
    let pg = pg_error(e);
    let mut context = pg.and_then(|p| p.r#where()).map(str::to_string);
    // Map "PL/pgSQL function inline_code_block line N" of a DO block to the file line.
    if let (Some(s), Some(c)) = (stmt, context.as_mut()) {
        if let Some(line) = do_block_line(sec, s, c) {
            c.push_str(&format!(" (file line {line})"));
        }
    }
    Error::Statement(Box::new(StatementError {
        file: m.name.clone(),
        path: m.path.clone(),
        version: m.version,
        direction: dir,
        line: stmt.map(|s| s.line),
        statement: stmt.map(|s| first_line(s.text(&sec.sql))),
        error_line: error_off.map(|o| sec.line_of(o)),
        sqlstate: pg.map(|p| p.code().to_string()),
        message: match pg {
            Some(p) => p.message().to_string(),
            None => describe_lost(e),
        },
        detail: pg.and_then(|p| p.detail()).map(str::to_string),
        hint: pg.and_then(|p| p.hint()).map(str::to_string),
        context,
        no_tx: m.no_tx,
        partial,
        cause: Cause::of(e),
    }))
}

fn do_block_line(sec: &Section, s: &Stmt, context: &str) -> Option<usize> {
    let rest = context.strip_prefix("PL/pgSQL function inline_code_block line ")?;
    let n: usize = rest.split_whitespace().next()?.parse().ok()?;
    let text = s.text(&sec.sql);
    if !text.trim_start().to_ascii_lowercase().starts_with("do") {
        return None;
    }
    let dollar = text.find('$')?;
    let tag_end = text[dollar + 1..].find('$')? + dollar + 2;
    Some(sec.line_of(s.start + tag_end) + n - 1)
}

fn first_line(text: &str) -> String {
    let l = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if l.chars().count() > 100 {
        format!("{}…", l.chars().take(100).collect::<String>())
    } else {
        l.to_string()
    }
}
