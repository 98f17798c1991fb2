//! One file's text to its sections: goose-annotated or plain, then the checks every statement
//! must pass before anything runs.

use super::goose;
use super::section::{Section, SectionBuilder};
use super::Format;

/// The result of parsing one file's text.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub format: Format,
    pub no_tx: bool,
    pub up: Section,
    pub down: Option<Section>,
    /// The Up section as written in the file (before ENVSUB): what the checksum covers.
    pub up_source: String,
    /// (line, message)
    pub warnings: Vec<(usize, String)>,
}

/// Parses one file's text (goose annotations or plain). Errors are (line, message).
pub(crate) fn parse_file(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, Vec<(usize, String)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.lines().any(goose::is_annotation) {
        parse_goose(text, env)
    } else {
        parse_plain(text)
    }
}

/// No annotations: the whole file is the up migration (sqlx style), `-- no-transaction` at the
/// very start runs it outside a transaction.
fn parse_plain(text: &str) -> Result<Parsed, Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let no_tx = text.starts_with("-- no-transaction");
    let up = SectionBuilder::from_text(text).finish(false, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    check_statements(&up, no_tx, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Parsed {
        format: Format::Plain,
        no_tx,
        up,
        down: None,
        up_source: text.to_string(),
        warnings: Vec::new(),
    })
}

fn parse_goose(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, Vec<(usize, String)>> {
    let g = goose::parse(text, env)?;
    let mut errors = Vec::new();
    check_statements(&g.up, g.no_tx, &mut errors);
    if let Some(d) = &g.down {
        check_statements(d, g.no_tx, &mut errors);
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(errors);
    }
    Ok(Parsed {
        format: Format::Goose,
        no_tx: g.no_tx,
        up: g.up,
        down: g.down,
        up_source: g.up_source,
        warnings: g.warnings,
    })
}

/// A transactional migration must not commit or roll back by itself: its ledger row is written
/// in the same transaction.
/// Statements PostgreSQL would refuse for what they are, not for what they do: transaction
/// control inside a migration that already runs in a transaction, and psql meta-commands
/// (`\restrict`, which newer pg_dump versions write, `\connect`, `\i`), which are not SQL.
fn check_statements(sec: &Section, no_tx: bool, errors: &mut Vec<(usize, String)>) {
    for s in sec.statements() {
        let text = s.text(&sec.sql);
        if text.starts_with('\\') {
            let line = text.lines().next().unwrap_or("").trim();
            let cmd = line.split_whitespace().next().unwrap_or(line);
            errors.push((
                s.line,
                format!(
                    "`{cmd}` is a psql meta-command, not SQL (pg_dump writes `\\restrict`/`\\unrestrict` lines for psql); delete the line"
                ),
            ));
            continue;
        }
        if no_tx {
            continue;
        }
        let first: String = text
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let is_tx_control = match first.as_str() {
            "begin" | "commit" | "rollback" | "end" | "abort" => true,
            "start" => text.to_ascii_lowercase().contains("transaction"),
            _ => false,
        };
        if is_tx_control {
            errors.push((
                s.line,
                format!(
                    "`{}` controls the transaction, but this migration already runs in one (with its ledger row); remove it, or mark the file `-- +goose NO TRANSACTION`",
                    text.lines().next().unwrap_or("").trim()
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "APP_ENV").then(|| "test".to_string())
    }

    fn parse(text: &str) -> Result<Parsed, Vec<(usize, String)>> {
        parse_file(text, &env)
    }

    #[test]
    fn goose_sections_units_and_lines() {
        let text = "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$\nBEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql;\nSELECT 1;\n-- +goose StatementEnd\n\nINSERT INTO a VALUES (1);\n-- +goose Down\nDROP FUNCTION f();\nDROP TABLE a;\n";
        let p = parse(text).unwrap();
        assert_eq!(p.format, Format::Goose);
        assert!(!p.no_tx);
        let lines: Vec<_> = p.up.units.iter().map(|u| (u.line, u.block)).collect();
        assert_eq!(lines, [(2, false), (4, true), (10, false)]);
        assert!(p.up.unit_text(&p.up.units[1]).ends_with("SELECT 1;"));
        assert!(!p.up.sql.contains("DROP"));
        let down = p.down.unwrap();
        assert_eq!(down.first_line, 11);
        assert_eq!(
            down.units.iter().map(|u| u.line).collect::<Vec<_>>(),
            [12, 13]
        );
        let fine: Vec<_> = p.up.statements().iter().map(|s| s.line).collect();
        assert_eq!(fine, [2, 4, 7, 10]);
    }

    #[test]
    fn plain_files_and_sqlx_no_transaction() {
        let p = parse("CREATE TABLE a (x int);\nSELECT 1").unwrap();
        assert_eq!(p.format, Format::Plain);
        assert_eq!(p.up.units.len(), 2);
        assert!(!p.no_tx);
        let p = parse("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON a (x);\n").unwrap();
        assert!(p.no_tx);
        let p = parse("\n-- no-transaction\nSELECT 1;\n").unwrap();
        assert!(!p.no_tx, "sqlx only honours the marker at the very start");
    }

    #[test]
    fn unterminated_statement_and_string() {
        let errs = parse("-- +goose Up\nALTER TABLE post\n\n-- +goose Down\n").unwrap_err();
        assert_eq!(errs[0].0, 2);
        assert!(errs[0].1.contains("missing semicolon"));
        let errs = parse("-- +goose Up\nSELECT 1;\nSELECT 'abc;\n").unwrap_err();
        assert_eq!(errs[0].0, 3);
        assert!(errs[0].1.contains("never closed"));
    }

    #[test]
    fn psql_meta_commands_are_refused_with_their_line() {
        let errs =
            parse("\\restrict abc123\n\nSET search_path = '';\nCREATE TABLE t (x int);\n\n\\unrestrict abc123\n")
                .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].0, 1);
        assert!(
            errs[0].1.contains("`\\restrict` is a psql meta-command"),
            "{errs:?}"
        );
        assert_eq!(errs[1].0, 6);
        // A backslash at the start of a line inside a string or a dollar-quoted body is SQL.
        assert!(parse("SELECT E'a\n\\nb';\nSELECT $$\n\\x$$;\n").is_ok());
    }

    #[test]
    fn transaction_control_is_refused_unless_no_transaction() {
        let errs = parse("-- +goose Up\nBEGIN;\nSELECT 1;\nCOMMIT;\n").unwrap_err();
        assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 4]);
        assert!(parse("-- +goose Up\n-- +goose NO TRANSACTION\nBEGIN;\nCOMMIT;\n").is_ok());
        assert!(parse("-- +goose Up\nSTART TRANSACTION;\n").is_err());
    }

    #[test]
    fn checksum_covers_the_up_section_as_written() {
        let a = parse("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n").unwrap();
        let b = parse("-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 3;\n").unwrap();
        assert_eq!(a.up_source, b.up_source);
        assert_eq!(a.up_source, "-- +goose Up\nSELECT 1;\n");
        let e = parse("-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${APP_ENV}';\n").unwrap();
        assert!(e.up_source.contains("${APP_ENV}"));
        let p = parse("SELECT 1;\n").unwrap();
        assert_eq!(p.up_source, "SELECT 1;\n");
    }
}
