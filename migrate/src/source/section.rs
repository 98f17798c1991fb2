//! The section model: one direction of a migration as SQL plus the units it is sent in, built
//! line by line from a file.

use crate::split::{self, Stmt};

/// One direction of a migration, as it will be executed.
#[derive(Debug, Clone)]
pub struct Section {
    /// The SQL sent to the server (ENVSUB applied). Lines keep the file's numbering.
    pub sql: String,
    /// File line number of `sql`'s first line.
    pub first_line: usize,
    /// Units sent one at a time outside a transaction: single statements, and whole
    /// StatementBegin/End blocks. Offsets are into `sql`.
    pub units: Vec<Unit>,
}

/// A statement or a StatementBegin/End block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub start: usize,
    pub end: usize,
    /// File line of the unit's first statement.
    pub line: usize,
    /// A StatementBegin/End block (possibly several SQL statements).
    pub block: bool,
}

impl Section {
    pub fn unit_text(&self, u: &Unit) -> &str {
        &self.sql[u.start..u.end]
    }

    /// Every SQL statement with its file line, blocks split into their statements (for locating a
    /// failure and for counting).
    pub fn statements(&self) -> Vec<Stmt> {
        let mut out = Vec::new();
        for u in &self.units {
            if u.block {
                let line = self.line_of(u.start);
                if let Ok(inner) = split::split(&self.sql[u.start..u.end], line) {
                    out.extend(inner.into_iter().map(|s| Stmt {
                        start: s.start + u.start,
                        end: s.end + u.start,
                        ..s
                    }));
                    continue;
                }
            }
            out.push(Stmt {
                start: u.start,
                end: u.end,
                line: u.line,
                terminated: true,
            });
        }
        out
    }

    /// File line of byte offset `off` in `sql`.
    pub fn line_of(&self, off: usize) -> usize {
        self.first_line
            + self.sql.as_bytes()[..off.min(self.sql.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
    }
}

/// A stretch of a section's SQL, before it is cut into units.
enum Segment {
    /// Free SQL: statements end with `;`.
    Free { start: usize, end: usize },
    /// A StatementBegin/End block: one unit.
    Block { start: usize, end: usize },
}

/// A section as its lines arrive: the SQL so far and where the free text and blocks lie.
pub(super) struct SectionBuilder {
    sql: String,
    first_line: usize,
    segments: Vec<Segment>,
    free_start: usize,
}

impl SectionBuilder {
    pub(super) fn new(first_line: usize) -> Self {
        SectionBuilder {
            sql: String::new(),
            first_line,
            segments: Vec::new(),
            free_start: 0,
        }
    }
    /// The whole text as one free stretch (a plain file).
    pub(super) fn from_text(text: &str) -> Self {
        let mut b = SectionBuilder::new(1);
        b.sql = text.to_string();
        b
    }

    /// Appends one line of the file.
    pub(super) fn push(&mut self, line: &str) {
        self.sql.push_str(line);
    }

    /// At a StatementBegin line: the free text before it must be complete statements; returns
    /// where the block's SQL starts.
    pub(super) fn begin_block(&mut self, annotation: &str) -> usize {
        self.close_free();
        self.sql.push_str(annotation);
        self.sql.len()
    }

    /// At a StatementEnd line: the block from `start` becomes one unit.
    pub(super) fn end_block(&mut self, start: usize, annotation: &str) {
        let end = self.sql.len();
        self.segments.push(Segment::Block { start, end });
        self.sql.push_str(annotation);
        self.free_start = self.sql.len();
    }

    fn close_free(&mut self) {
        let end = self.sql.len();
        self.segments.push(Segment::Free {
            start: self.free_start,
            end,
        });
        self.free_start = end;
    }

    /// Lexes the segments into units. `strict`: every statement must end with `;` (goose files).
    pub(super) fn finish(mut self, strict: bool, errors: &mut Vec<(usize, String)>) -> Section {
        self.close_free();
        let mut sec = Section {
            sql: self.sql,
            first_line: self.first_line,
            units: Vec::new(),
        };
        for seg in &self.segments {
            let (start, end, block) = match *seg {
                Segment::Free { start, end } => (start, end, false),
                Segment::Block { start, end } => (start, end, true),
            };
            let line = sec.line_of(start);
            match split::split(&sec.sql[start..end], line) {
                Err(e) => errors.push((e.line, e.to_string())),
                Ok(stmts) if block => {
                    if let (Some(first), Some(last)) = (stmts.first(), stmts.last()) {
                        sec.units.push(Unit {
                            start: start + first.start,
                            end: start + last.end,
                            line: first.line,
                            block: true,
                        });
                    }
                }
                Ok(stmts) => {
                    for s in stmts {
                        if !s.terminated && strict {
                            errors.push((
                                s.line,
                                "statement does not end with `;` (goose would reject it: missing semicolon?)"
                                    .into(),
                            ));
                        }
                        sec.units.push(Unit {
                            start: start + s.start,
                            end: start + s.end,
                            line: s.line,
                            block: false,
                        });
                    }
                }
            }
        }
        sec
    }
}
