//! Property test of the statement splitter: random valid statements, full of `;`, quotes, dollar
//! bodies and comments in every place PostgreSQL allows them, joined with random separators
//! (whitespace and comments) and split again, must come back exactly, with their line numbers.

use migrate::split::split;
use proptest::prelude::*;

/// Text that may contain anything dangerous: semicolons, quotes of every kind, comment starters,
/// dollar signs, newlines.
fn nasty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(";".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("--".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("$".to_string()),
            Just("$$".to_string()),
            Just("\\".to_string()),
            Just("\n".to_string()),
            Just(" ".to_string()),
            "[a-zA-Z0-9_]{1,6}",
            Just("é😀".to_string()),
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

/// One lexical element of a statement; every element is valid on its own.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        // Keywords and identifiers (no BEGIN/CASE/END/CREATE: they steer the BEGIN ATOMIC rule).
        prop::sample::select(vec![
            "SELECT", "INSERT", "INTO", "VALUES", "FROM", "WHERE", "ALTER", "TABLE", "ADD",
            "COLUMN", "tbl", "x_1", "e", "E", "u", "U", "b", "n", "a$b", "col$", "_y",
        ])
        .prop_map(str::to_string),
        // Numbers, operators, parameters.
        prop::sample::select(vec![
            "1", "42", "3.14", "1e10", "+", "-", "*", "=", "<>", "::", "||", ",", ".", "$1", "$23",
            "[", "]", "@",
        ])
        .prop_map(str::to_string),
        // '...' with doubled quotes.
        nasty().prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        // E'...' with backslash escapes (a lone trailing backslash would escape the closing quote).
        nasty().prop_map(|s| format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))),
        // "..." identifiers.
        nasty().prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        // U&'...' and B'...' strings.
        nasty().prop_map(|s| format!("U&'{}'", s.replace('\'', "''"))),
        // Dollar-quoted bodies with and without tags; the body never contains its own delimiter.
        (
            prop::sample::select(vec!["", "fn", "body_1", "X", "é"]),
            nasty()
        )
            .prop_map(|(tag, body)| {
                let delim = format!("${tag}$");
                let mut body = body;
                while body.contains(&delim) {
                    body = body.replace(&delim, "");
                }
                format!("{delim}{body} {delim}")
            }),
        // -- comments (always followed by a newline).
        nasty().prop_map(|s| format!("-- {}\n", s.replace('\n', " "))),
        // Nested /* */ comments.
        (nasty(), nasty()).prop_map(|(a, b)| {
            let clean = |s: String| s.replace("/*", "/ *").replace("*/", "* /");
            format!("/* {} /* {} */ ; */", clean(a), clean(b))
        }),
    ]
}

/// Parenthesised groups hold semicolons too (CREATE RULE ... DO (a; b)).
fn group() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 1..4)
        .prop_map(|f| format!("( {} ; {} )", f.join(" "), "SELECT 1"))
}

fn statement() -> impl Strategy<Value = String> {
    let plain = (
        prop::sample::select(vec!["SELECT", "INSERT", "UPDATE", "ALTER", "DO", "tbl"]),
        prop::collection::vec(prop_oneof![4 => fragment(), 1 => group()], 0..10),
        prop::collection::vec(prop::sample::select(vec![" ", "\n", "\t", "  \n "]), 10),
    )
        .prop_map(|(head, frags, seps)| {
            let mut s = head.to_string();
            for (i, f) in frags.iter().enumerate() {
                s.push_str(seps[i % seps.len()]);
                s.push_str(f);
            }
            // A statement never ends in a -- comment: its `;` would be inside the comment.
            // (And an unterminated statement ends at its last token, not at a trailing comment.)
            if s.ends_with('\n') || s.ends_with("*/") {
                s.push_str(" x");
            }
            s
        });
    prop_oneof![
        6 => plain,
        1 => Just("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN 1 = 1 THEN 1 ELSE 2 END;\n  SELECT 2;\nEND".to_string()),
        1 => Just("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END".to_string()),
    ]
}

/// What may come between statements: whitespace and comments.
fn separator() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("\n".to_string()),
            Just(" ".to_string()),
            Just("\n\n".to_string()),
            nasty().prop_map(|s| format!("-- {}\n", s.replace('\n', " "))),
            nasty().prop_map(|s| format!("/* {} */", s.replace("/*", "/ *").replace("*/", "* /"))),
        ],
        0..4,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn joined_statements_split_back(
        stmts in prop::collection::vec(statement(), 1..8),
        seps in prop::collection::vec(separator(), 9),
        last_terminated in any::<bool>(),
        first_line in 1usize..500,
    ) {
        let mut sql = seps[0].clone();
        let mut expected = Vec::new();
        for (i, s) in stmts.iter().enumerate() {
            let terminated = i + 1 < stmts.len() || last_terminated;
            let text = if terminated { format!("{s};") } else { s.clone() };
            let line = first_line + sql.matches('\n').count();
            expected.push((text.clone(), line, terminated));
            sql.push_str(&text);
            // A separator after an unterminated last statement must not be a comment glued to it
            // that a human would read as part of it; whitespace first keeps it apart.
            sql.push('\n');
            sql.push_str(&seps[(i + 1) % seps.len()]);
        }
        let got = split(&sql, first_line).map_err(|e| TestCaseError::fail(format!("{e} in {sql:?}")))?;
        let got: Vec<(String, usize, bool)> = got
            .iter()
            .map(|s| (s.text(&sql).to_string(), s.line, s.terminated))
            .collect();
        prop_assert_eq!(got, expected, "input: {:?}", sql);
    }

    #[test]
    fn never_panics_on_arbitrary_text(s in ".{0,200}") {
        let _ = split(&s, 1);
    }
}
