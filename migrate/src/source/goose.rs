//! The goose annotation parser: a file is cut into its Up and Down sections and
//! StatementBegin/End blocks along `-- +goose` lines, with `NO TRANSACTION` and
//! `ENVSUB ON`/`OFF` noted on the way. Every problem is collected with its line.

use super::section::{Section, SectionBuilder};
use crate::envsub;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    EnvsubOn,
    EnvsubOff,
}

/// goose's rule: a line is an annotation when, trimmed, it starts with `--` and contains `+goose`.
pub(super) fn is_annotation(line: &str) -> bool {
    let t = line.trim();
    t.starts_with("--") && t.contains("+goose")
}

fn parse_annotation(line: &str) -> Result<Annotation, String> {
    let trimmed_end = line.trim_end();
    if trimmed_end.len() != trimmed_end.trim_start().len() {
        return Err(
            "a goose annotation must start at the beginning of the line (no leading whitespace)"
                .into(),
        );
    }
    let body = trimmed_end.trim_start_matches('-').trim();
    let Some(rest) = body.strip_prefix("+goose") else {
        return Err(format!(
            "`{trimmed_end}` is not a goose annotation; write `-- +goose <Up|Down|StatementBegin|StatementEnd|NO TRANSACTION|ENVSUB ON|ENVSUB OFF>`"
        ));
    };
    if rest.contains("+goose") {
        return Err("`+goose` appears twice on one line".into());
    }
    let words: Vec<String> = rest.split_whitespace().map(str::to_lowercase).collect();
    let a = match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["up"] => Annotation::Up,
        ["down"] => Annotation::Down,
        ["statementbegin"] => Annotation::StatementBegin,
        ["statementend"] => Annotation::StatementEnd,
        ["no", "transaction"] => Annotation::NoTransaction,
        ["envsub", "on"] => Annotation::EnvsubOn,
        ["envsub", "off"] => Annotation::EnvsubOff,
        [] => return Err("empty goose annotation: `-- +goose` must be followed by Up, Down, StatementBegin, StatementEnd, NO TRANSACTION or ENVSUB ON/OFF".into()),
        _ => {
            return Err(format!(
                "unknown goose annotation `{}`; known: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF",
                rest.trim()
            ))
        }
    };
    Ok(a)
}

/// Where the parser is in the file.
#[derive(PartialEq)]
enum Place {
    /// Before `-- +goose Up`.
    Start,
    Up,
    Down,
}

/// The parse of a goose file, line by line.
struct Parser<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    place: Place,
    up_line: usize,
    down_line: usize,
    /// Where the Down section starts in the text (the end of what the checksum covers).
    down_offset: usize,
    no_tx: bool,
    envsub: bool,
    /// An open StatementBegin: (its line, SQL offset after it).
    block: Option<(usize, usize)>,
    up: SectionBuilder,
    down: Option<SectionBuilder>,
    unset: Vec<String>,
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
}

/// A goose file's sections, before the statement checks.
#[derive(Debug)]
pub(super) struct Goose {
    pub no_tx: bool,
    pub up: Section,
    pub down: Option<Section>,
    /// The Up section as written (before ENVSUB).
    pub up_source: String,
    pub warnings: Vec<(usize, String)>,
}

/// Cuts a goose file (one with annotations) into its sections. Errors are (line, message),
/// sorted, all of them.
pub(super) fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Goose, Vec<(usize, String)>> {
    let mut p = Parser::new(text.len(), env);
    if text.starts_with("-- no-transaction") {
        p.warnings.push((
            1,
            "`-- no-transaction` is sqlx's marker and is ignored in a goose file; use `-- +goose NO TRANSACTION`".to_string(),
        ));
    }
    let mut offset = 0;
    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        p.line(idx + 1, offset, raw);
        offset += raw.len();
    }
    p.finish(text)
}

impl<'e> Parser<'e> {
    fn new(len: usize, env: &'e dyn Fn(&str) -> Option<String>) -> Self {
        Parser {
            env,
            place: Place::Start,
            up_line: 0,
            down_line: 0,
            down_offset: len,
            no_tx: false,
            envsub: false,
            block: None,
            up: SectionBuilder::new(1),
            down: None,
            unset: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The section the current line belongs to.
    fn cur(&mut self) -> &mut SectionBuilder {
        match self.down.as_mut() {
            Some(d) => d,
            None => &mut self.up,
        }
    }

    fn error(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push((line, message.into()));
    }

    fn line(&mut self, lineno: usize, line_start: usize, raw: &str) {
        if is_annotation(raw) {
            match parse_annotation(raw) {
                Ok(a) => self.annotation(a, lineno, line_start, raw),
                Err(e) => {
                    self.error(lineno, e);
                    self.cur().push(raw);
                }
            }
            return;
        }
        if self.place == Place::Start {
            let t = raw.trim();
            if !t.is_empty() && !t.starts_with("--") {
                self.error(
                    lineno,
                    "SQL before `-- +goose Up`; a goose file starts its SQL after `-- +goose Up`",
                );
            }
        }
        if self.envsub {
            self.substituted(lineno, raw);
        } else {
            self.cur().push(raw);
        }
    }

    /// A line with ENVSUB values put in; an unset variable is a warning.
    fn substituted(&mut self, lineno: usize, raw: &str) {
        let mut unset = std::mem::take(&mut self.unset);
        match envsub::substitute(raw, self.env, &mut unset) {
            Ok(s) => self.cur().push(&s),
            Err(e) => {
                self.error(lineno, format!("ENVSUB: {}", e.0));
                self.cur().push(raw);
            }
        }
        for name in unset.drain(..) {
            self.warnings.push((
                lineno,
                format!("ENVSUB: ${name} is not set; substituted an empty string"),
            ));
        }
        self.unset = unset;
    }

    /// An annotation line; it stays in the section's SQL (as a comment) so lines keep their
    /// numbers.
    fn annotation(&mut self, a: Annotation, lineno: usize, line_start: usize, raw: &str) {
        let placed = match a {
            Annotation::Up => {
                self.up_mark(lineno);
                false
            }
            Annotation::Down => self.down_mark(lineno, line_start, raw),
            Annotation::StatementBegin => self.begin(lineno, raw),
            Annotation::StatementEnd => self.end(lineno, raw),
            Annotation::NoTransaction => {
                self.no_tx = true;
                false
            }
            Annotation::EnvsubOn => {
                self.envsub = true;
                false
            }
            Annotation::EnvsubOff => {
                self.envsub = false;
                false
            }
        };
        if !placed {
            self.cur().push(raw);
        }
    }

    fn up_mark(&mut self, lineno: usize) {
        if self.place != Place::Start {
            let first = self.up_line;
            self.error(
                lineno,
                format!(
                    "second `-- +goose Up` (the first is on line {first}); a file has exactly one"
                ),
            );
        } else {
            self.place = Place::Up;
            self.up_line = lineno;
        }
    }

    /// `-- +goose Down`; true when the line went into the new Down section.
    fn down_mark(&mut self, lineno: usize, line_start: usize, raw: &str) -> bool {
        match self.place {
            Place::Start => self.error(
                lineno,
                "`-- +goose Down` before `-- +goose Up`; the Up section comes first",
            ),
            Place::Down => {
                let first = self.down_line;
                self.error(
                    lineno,
                    format!("second `-- +goose Down` (the first is on line {first})"),
                )
            }
            Place::Up => {
                if let Some((bl, _)) = self.block.take() {
                    self.error(
                        bl,
                        "`-- +goose StatementBegin` has no matching `-- +goose StatementEnd` before `-- +goose Down`",
                    );
                }
                self.place = Place::Down;
                self.down_line = lineno;
                self.down_offset = line_start;
                let mut d = SectionBuilder::new(lineno);
                d.push(raw);
                self.down = Some(d);
                return true;
            }
        }
        false
    }

    /// `-- +goose StatementBegin`; true when it opened a block.
    fn begin(&mut self, lineno: usize, raw: &str) -> bool {
        if self.place == Place::Start {
            self.error(lineno, "`-- +goose StatementBegin` before `-- +goose Up`");
        } else if let Some((bl, _)) = self.block {
            self.error(
                lineno,
                format!("`-- +goose StatementBegin` inside the block opened on line {bl} (missing StatementEnd?)"),
            );
        } else {
            let start = self.cur().begin_block(raw);
            self.block = Some((lineno, start));
            return true;
        }
        false
    }

    /// `-- +goose StatementEnd`; true when it closed a block.
    fn end(&mut self, lineno: usize, raw: &str) -> bool {
        match self.block.take() {
            None => {
                self.error(
                    lineno,
                    "`-- +goose StatementEnd` without a `-- +goose StatementBegin`",
                );
                false
            }
            Some((_, start)) => {
                self.cur().end_block(start, raw);
                true
            }
        }
    }

    /// The end of the file: what is still open is an error; the sections are cut into units.
    fn finish(mut self, text: &str) -> Result<Goose, Vec<(usize, String)>> {
        if self.place == Place::Start {
            self.error(
                1,
                "no `-- +goose Up` annotation; a goose file must have one (or drop all annotations for a plain file)",
            );
        }
        if let Some((bl, _)) = self.block {
            self.error(
                bl,
                "`-- +goose StatementBegin` has no matching `-- +goose StatementEnd`",
            );
        }
        let mut errors = self.errors;
        if !errors.is_empty() {
            errors.sort();
            return Err(errors);
        }
        let up = self.up.finish(true, &mut errors);
        let down = self.down.map(|d| d.finish(true, &mut errors));
        if !errors.is_empty() {
            errors.sort();
            return Err(errors);
        }
        Ok(Goose {
            no_tx: self.no_tx,
            up,
            down,
            up_source: text[..self.down_offset].to_string(),
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    fn env(k: &str) -> Option<String> {
        (k == "APP_ENV").then(|| "test".to_string())
    }

    fn parse(text: &str) -> Result<super::Goose, Vec<(usize, String)>> {
        super::parse(text, &env)
    }

    #[test]
    fn annotations_are_case_insensitive() {
        let p = parse(
            "-- +goose up\n-- +goose no   Transaction\nSELECT 1;\n-- +goose DOWN\nSELECT 2;\n",
        )
        .unwrap();
        assert!(p.no_tx);
        assert!(p.down.is_some());
    }

    #[test]
    fn every_error_with_its_line() {
        let text = "-- +goose Down\n-- +goose Up\nSELECT 1;\n -- +goose StatementBegin\n-- +goose Frobnicate\n-- +goose Up\n-- +goose StatementBegin\nSELECT 2;\n";
        let errs = parse(text).unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.0).collect();
        assert_eq!(lines, [1, 4, 5, 6, 7], "{errs:#?}");
        assert!(errs[0].1.contains("before `-- +goose Up`"));
        assert!(errs[1].1.contains("leading whitespace"));
        assert!(errs[2].1.contains("unknown goose annotation"));
        assert!(errs[3].1.contains("second `-- +goose Up`"));
        assert!(errs[4].1.contains("no matching"));
    }

    #[test]
    fn missing_up_and_sql_before_up() {
        let errs = parse("SELECT 0;\n-- +goose Down\nSELECT 1;\n").unwrap_err();
        assert!(errs.iter().any(|e| e.0 == 1 && e.1.contains("SQL before")));
        let errs = parse("-- +goose StatementEnd\n").unwrap_err();
        assert!(errs.iter().any(|e| e.1.contains("without a")));
    }

    #[test]
    fn envsub_between_on_and_off() {
        let p = parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${APP_ENV}';\n-- +goose ENVSUB OFF\nSELECT '${APP_ENV}';\n").unwrap();
        assert!(p.up.sql.contains("SELECT 'test';\n"));
        assert!(p.up.sql.contains("SELECT '${APP_ENV}';\n"));
        let errs =
            parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${NOPE?needed}';\n").unwrap_err();
        assert_eq!(errs[0].0, 3);
        let p = parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${NOPE}';\n").unwrap();
        assert_eq!(p.warnings.len(), 1);
    }
}
