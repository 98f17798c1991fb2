//! A statement splitter that follows PostgreSQL's lexical rules, for migrations that must be sent
//! one statement at a time (`NO TRANSACTION`) and for locating a failed statement.
//!
//! It understands what can hide a `;`: `'...'` strings (with `''`), `E'...'` strings (with
//! backslash escapes), `"..."` identifiers, `$$`/`$tag$` bodies, `--` comments, nested `/* */`
//! comments, parentheses (`CREATE RULE ... DO (a; b)`), and — like psql — `BEGIN ATOMIC ... END`
//! bodies of `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (with `CASE ... END` inside).
//!
//! Comments and blank space before a statement are not part of it; comments inside are kept.

use std::fmt;

/// One statement: `text[start..end]`, including its terminating `;` when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub start: usize,
    pub end: usize,
    /// Line of the statement's first character (counting from the `first_line` given to `split`).
    pub line: usize,
    /// Whether the statement ends with `;` (only the last one of a text may lack it).
    pub terminated: bool,
}

impl Stmt {
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }
}

/// A construct that was opened and never closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Line where the construct starts.
    pub line: usize,
    pub what: &'static str,
}

impl fmt::Display for LexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} starting here is never closed", self.what)
    }
}

impl std::error::Error for LexError {}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Splits `sql` into statements. `first_line` is the line number of `sql`'s first line.
pub fn split(sql: &str, first_line: usize) -> Result<Vec<Stmt>, LexError> {
    Lexer::new(sql, first_line).run()
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

/// Per-statement state for psql's BEGIN ATOMIC heuristic.
#[derive(Default)]
struct StmtState {
    start: Option<(usize, usize)>,
    paren: i32,
    words: usize,
    /// First four words, lowercased, to recognise `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    head: [Option<&'static str>; 4],
    begin_depth: i32,
    /// End of the statement's last token so far.
    last: usize,
}

impl StmtState {
    fn is_routine(&self) -> bool {
        let h = &self.head;
        h[0] == Some("create")
            && (matches!(h[1], Some("function") | Some("procedure"))
                || (h[1] == Some("or")
                    && h[2] == Some("replace")
                    && matches!(h[3], Some("function") | Some("procedure"))))
    }

    fn word(&mut self, w: &str) {
        const HEAD: [&str; 5] = ["create", "or", "replace", "function", "procedure"];
        if self.words < 4 {
            self.head[self.words] = HEAD.iter().copied().find(|k| k.eq_ignore_ascii_case(w));
        }
        self.words += 1;
        if self.paren == 0 && self.is_routine() {
            if w.eq_ignore_ascii_case("begin") {
                self.begin_depth += 1;
            } else if w.eq_ignore_ascii_case("case") {
                if self.begin_depth >= 1 {
                    self.begin_depth += 1;
                }
            } else if w.eq_ignore_ascii_case("end") && self.begin_depth > 0 {
                self.begin_depth -= 1;
            }
        }
    }
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str, first_line: usize) -> Self {
        Lexer {
            s: sql.as_bytes(),
            i: 0,
            line: first_line,
        }
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    /// Advances one byte, counting lines.
    fn bump(&mut self) {
        if self.s[self.i] == b'\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    fn run(mut self) -> Result<Vec<Stmt>, LexError> {
        let mut out = Vec::new();
        let mut st = StmtState::default();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            // Whitespace and comments never start a statement.
            if c.is_ascii_whitespace() {
                self.bump();
                continue;
            }
            if c == b'-' && self.peek(1) == Some(b'-') {
                while self.i < self.s.len() && self.s[self.i] != b'\n' {
                    self.i += 1;
                }
                continue;
            }
            if c == b'/' && self.peek(1) == Some(b'*') {
                self.block_comment()?;
                continue;
            }
            if st.start.is_none() {
                if c == b';' {
                    // An empty statement: nothing to send.
                    self.bump();
                    continue;
                }
                st.start = Some((self.i, self.line));
            }
            match c {
                b';' => {
                    self.bump();
                    if st.paren <= 0 && st.begin_depth == 0 {
                        let (start, line) = st.start.take().unwrap_or((self.i - 1, self.line));
                        out.push(Stmt {
                            start,
                            end: self.i,
                            line,
                            terminated: true,
                        });
                        st = StmtState::default();
                    }
                }
                b'\'' => self.quoted(b'\'', false, "string")?,
                b'"' => self.quoted(b'"', false, "quoted identifier")?,
                b'(' => {
                    st.paren += 1;
                    self.bump();
                }
                b')' => {
                    st.paren -= 1;
                    self.bump();
                }
                b'$' => {
                    if let Some(tag_len) = self.dollar_tag() {
                        self.dollar_body(tag_len)?;
                    } else {
                        // A parameter ($1) or a lone `$`.
                        self.bump();
                        while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
                            self.bump();
                        }
                    }
                }
                _ if is_ident_start(c) => {
                    let start = self.i;
                    while self.peek(0).is_some_and(is_ident_cont) {
                        self.i += 1;
                    }
                    let word = &self.s[start..self.i];
                    let next = self.peek(0);
                    match (word, next) {
                        ([b'e' | b'E'], Some(b'\'')) => self.quoted(b'\'', true, "string")?,
                        ([b'u' | b'U'], Some(b'&'))
                            if matches!(self.peek(1), Some(b'\'') | Some(b'"')) =>
                        {
                            self.i += 1; // the '&'; the quote is read on the next turn
                        }
                        _ => {
                            // Safe: ASCII boundaries of an identifier run.
                            let w = std::str::from_utf8(word).unwrap_or("");
                            st.word(w);
                        }
                    }
                }
                _ if c.is_ascii_digit() => {
                    while self
                        .peek(0)
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                    {
                        self.i += 1;
                    }
                }
                _ => self.bump(),
            }
            st.last = self.i;
        }
        if let Some((start, line)) = st.start {
            // Trailing whitespace/comments after the last token are not part of the statement.
            out.push(Stmt {
                start,
                end: st.last,
                line,
                terminated: false,
            });
        }
        Ok(out)
    }

    fn block_comment(&mut self) -> Result<(), LexError> {
        let line = self.line;
        let mut depth = 0usize;
        while self.i < self.s.len() {
            if self.s[self.i] == b'/' && self.peek(1) == Some(b'*') {
                depth += 1;
                self.i += 2;
            } else if self.s[self.i] == b'*' && self.peek(1) == Some(b'/') {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                self.bump();
            }
        }
        Err(LexError {
            line,
            what: "a /* comment */",
        })
    }

    /// Reads a quoted string or identifier starting at the opening quote; a doubled quote is an
    /// escaped quote; with `backslash`, `\x` escapes any character (E'' strings).
    fn quoted(&mut self, q: u8, backslash: bool, what: &'static str) -> Result<(), LexError> {
        let line = self.line;
        self.bump(); // opening quote
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if backslash && c == b'\\' {
                self.bump();
                if self.i < self.s.len() {
                    self.bump();
                }
            } else if c == q {
                self.bump();
                if self.peek(0) == Some(q) {
                    self.bump();
                } else {
                    return Ok(());
                }
            } else {
                self.bump();
            }
        }
        Err(LexError { line, what })
    }

    /// If a dollar-quote delimiter (`$$` or `$tag$`) starts here, its length.
    fn dollar_tag(&self) -> Option<usize> {
        let s = &self.s[self.i..];
        if s.len() < 2 {
            return None;
        }
        if s[1] == b'$' {
            return Some(2);
        }
        if !(is_ident_start(s[1])) {
            return None;
        }
        let mut k = 2;
        while k < s.len() && (is_ident_start(s[k]) || s[k].is_ascii_digit()) {
            k += 1;
        }
        (k < s.len() && s[k] == b'$').then_some(k + 1)
    }

    fn dollar_body(&mut self, tag_len: usize) -> Result<(), LexError> {
        let line = self.line;
        let tag = &self.s[self.i..self.i + tag_len];
        let body_start = self.i + tag_len;
        match find(&self.s[body_start..], tag) {
            Some(k) => {
                let end = body_start + k + tag_len;
                while self.i < end {
                    self.bump();
                }
                Ok(())
            }
            None => Err(LexError {
                line,
                what: "a dollar-quoted string",
            }),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql, 1)
            .unwrap()
            .iter()
            .map(|s| s.text(sql).to_string())
            .collect()
    }

    #[test]
    fn simple_statements_and_lines() {
        let sql = "-- head\nCREATE TABLE a (x int);\n\nINSERT INTO a VALUES (1); SELECT 2;\n";
        let st = split(sql, 10).unwrap();
        assert_eq!(
            texts(sql),
            [
                "CREATE TABLE a (x int);",
                "INSERT INTO a VALUES (1);",
                "SELECT 2;"
            ]
        );
        assert_eq!(st.iter().map(|s| s.line).collect::<Vec<_>>(), [11, 13, 13]);
    }

    #[test]
    fn semicolons_hidden_in_strings_comments_and_quotes() {
        let sql = "SELECT 'a;b', 'it''s; -- not a comment';\n\
                   SELECT E'\\'; still string', \"we;ird\"\"id\";\n\
                   SELECT 1 /* c; /* nested; */ still; */ + 2; -- trailing; comment\n\
                   SELECT $$ x; $$, $fn$ $$; $fn$, $1;";
        assert_eq!(
            texts(sql),
            [
                "SELECT 'a;b', 'it''s; -- not a comment';",
                "SELECT E'\\'; still string', \"we;ird\"\"id\";",
                "SELECT 1 /* c; /* nested; */ still; */ + 2;",
                "SELECT $$ x; $$, $fn$ $$; $fn$, $1;",
            ]
        );
    }

    #[test]
    fn identifiers_with_dollars_are_not_dollar_quotes() {
        let sql = "SELECT a$b$ FROM t; SELECT 2;";
        assert_eq!(texts(sql), ["SELECT a$b$ FROM t;", "SELECT 2;"]);
    }

    #[test]
    fn begin_atomic_bodies_like_psql() {
        let sql = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\n\
                   BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;\n\
                   BEGIN; COMMIT;";
        assert_eq!(
            texts(sql),
            [
                "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;",
                "BEGIN;",
                "COMMIT;"
            ]
        );
    }

    #[test]
    fn parentheses_hold_semicolons() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1;";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn unterminated_last_statement_is_trimmed() {
        let sql = "SELECT 1;\nSELECT 'x' -- done\n  /* c */ \n";
        let st = split(sql, 1).unwrap();
        assert_eq!(st[1].text(sql), "SELECT 'x'");
        assert!(!st[1].terminated);
        assert_eq!(st[1].line, 2);
    }

    #[test]
    fn unclosed_constructs_are_errors_with_their_line() {
        assert_eq!(
            split("SELECT 1;\nSELECT 'abc;\n", 1).unwrap_err(),
            LexError {
                line: 2,
                what: "string"
            }
        );
        assert_eq!(split("\n\nSELECT $x$ body", 1).unwrap_err().line, 3);
        assert_eq!(split("/* /* */", 5).unwrap_err().line, 5);
        assert_eq!(split("SELECT E'\\';", 1).unwrap_err().what, "string");
        assert!(split("SELECT \"abc", 1).is_err());
    }

    #[test]
    fn unicode_and_escape_prefixes() {
        let sql = "SELECT U&'d\\0061t;a', U&\"x;y\", e'\\\\'; SELECT B'01', X'ff', N'n;';";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn empty_statements_are_skipped() {
        assert_eq!(texts(";; SELECT 1;;"), ["SELECT 1;"]);
        assert!(texts("-- only a comment\n").is_empty());
    }
}
