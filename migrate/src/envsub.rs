//! `-- +goose ENVSUB ON` substitution, following goose (mfridman/interpolate) on each line between
//! `ENVSUB ON` and `ENVSUB OFF`:
//!
//! - `${NAME}` and `$NAME`: the variable's value, empty when unset;
//! - `${NAME:-word}`: `word` when NAME is unset or empty; `${NAME-word}`: when unset;
//! - `${NAME?message}` / `${NAME:?message}`: an error when NAME is unset (resp. unset or empty);
//! - `$$` is kept as it is (goose keeps `$$` function bodies intact), `\$` gives a literal `$`,
//!   and a `$` not followed by a letter, `_` or `{` (`$1`, `$(`) is kept.
//!
//! Beware (as with goose): `$tag$` dollar quotes inside an ENVSUB region are read as `$tag`.

/// A substitution failure: what went wrong, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvsubError(pub String);

/// Substitutes one line. `lookup` gives a variable's value; `unset` collects the names of
/// variables that were referenced without a value and without a default.
pub fn substitute(
    line: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, EnvsubError> {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    let mut lit = 0; // start of the pending literal run
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'$') => {
                out.push_str(&line[lit..i]);
                out.push('$');
                i += 2;
                lit = i;
            }
            b'$' if b.get(i + 1) == Some(&b'$') => i += 2,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                out.push_str(&line[lit..i]);
                let close = find_close(b, i + 2).ok_or_else(|| {
                    EnvsubError(format!(
                        "`{}` has no closing `}}`",
                        &line[i..b.len().min(i + 40)]
                    ))
                })?;
                out.push_str(&brace(&line[i + 2..close], lookup, unset)?);
                i = close + 1;
                lit = i;
            }
            b'$' if b
                .get(i + 1)
                .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_') =>
            {
                out.push_str(&line[lit..i]);
                let end = ident_end(b, i + 1);
                let name = &line[i + 1..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name.to_string()),
                }
                i = end;
                lit = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&line[lit..]);
    Ok(out)
}

fn ident_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// Index of the `}` closing a `${` whose content starts at `from` (nested `${...}` allowed).
fn find_close(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn brace(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, EnvsubError> {
    let b = inner.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return Err(EnvsubError(format!(
            "`${{{inner}}}`: a variable name must start with a letter or `_`"
        )));
    }
    let end = ident_end(b, 0);
    let name = &inner[..end];
    let op = &inner[end..];
    let value = lookup(name);
    let word = |w: &str, unset: &mut Vec<String>| substitute(w, lookup, unset);
    if op.is_empty() {
        return Ok(value.unwrap_or_else(|| {
            unset.push(name.to_string());
            String::new()
        }));
    }
    if let Some(w) = op.strip_prefix(":-") {
        return match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => word(w, unset),
        };
    }
    if let Some(w) = op.strip_prefix(":?") {
        return match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(required(name, w)),
        };
    }
    if let Some(w) = op.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v),
            None => word(w, unset),
        };
    }
    if let Some(w) = op.strip_prefix('?') {
        return value.ok_or_else(|| required(name, w));
    }
    Err(EnvsubError(format!(
        "`${{{inner}}}`: unsupported expansion (use ${{NAME}}, ${{NAME:-default}}, ${{NAME-default}} or ${{NAME?message}})"
    )))
}

fn required(name: &str, msg: &str) -> EnvsubError {
    let msg = if msg.is_empty() {
        "is not set".to_string()
    } else {
        msg.to_string()
    };
    EnvsubError(format!("variable {name}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "NAME" => Some("foo".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, EnvsubError> {
        substitute(s, &env, &mut Vec::new())
    }

    #[test]
    fn goose_expansions() {
        assert_eq!(
            sub("$NAME text, ${NAME}title3").unwrap(),
            "foo text, footitle3"
        );
        assert_eq!(sub("${OTHER:-default}x").unwrap(), "defaultx");
        assert_eq!(sub("${EMPTY-default}x").unwrap(), "x");
        assert_eq!(sub("${EMPTY:-default}x").unwrap(), "defaultx");
        assert_eq!(sub("${OTHER:-${NAME}}").unwrap(), "foo");
        assert_eq!(sub("'${NAME}'").unwrap(), "'foo'");
    }

    #[test]
    fn dollars_that_are_not_variables_stay() {
        assert_eq!(
            sub("AS $$ BEGIN $1; END $$").unwrap(),
            "AS $$ BEGIN $1; END $$"
        );
        assert_eq!(sub("cost \\$NAME").unwrap(), "cost $NAME");
        assert_eq!(sub("x $").unwrap(), "x $");
    }

    #[test]
    fn unset_and_required() {
        let mut unset = Vec::new();
        assert_eq!(substitute("a${MISSING}b", &env, &mut unset).unwrap(), "ab");
        assert_eq!(unset, ["MISSING"]);
        assert_eq!(
            sub("${MISSING?must be set}").unwrap_err().0,
            "variable MISSING: must be set"
        );
        assert!(sub("${EMPTY:?}").is_err());
        assert!(sub("${EMPTY?}").is_ok());
        assert!(sub("${NAME").is_err());
        assert!(sub("${1x}").is_err());
    }
}
