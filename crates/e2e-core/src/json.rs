//! The one JSON shape every tool prints with `--json`: one document
//! `{"tool": NAME, "results": [{..., "status": S, "seconds": N}, ...], ...}`.
//! Each result carries its own `status` (a word: `built`, `loaded`, `applied`, ...) and
//! `seconds` (a number); what else a tool reports sits beside them, with the same field
//! names in every tool where the meaning is the same.

use serde_json::{Map, Value};

/// Builds the document: `tool`, `results`, then `extra`'s fields (an object; anything else is
/// ignored).
pub fn document(tool: &str, results: Vec<Value>, extra: Value) -> Value {
    let mut doc = Map::new();
    doc.insert("tool".into(), Value::String(tool.into()));
    doc.insert("results".into(), Value::Array(results));
    if let Value::Object(fields) = extra {
        for (k, v) in fields {
            doc.entry(k).or_insert(v);
        }
    }
    Value::Object(doc)
}

/// Pretty-printed, followed by a newline: what `--json` writes on stdout.
pub fn to_text(doc: &Value) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("a JSON value serialises");
    s.push('\n');
    s
}

/// Checks `doc` against the shape above; the error says what is wrong, for tests.
pub fn check_shape(doc: &Value, tool: &str) -> Result<(), String> {
    let obj = doc.as_object().ok_or("the document is not an object")?;
    match obj.get("tool").and_then(Value::as_str) {
        Some(t) if t == tool => {}
        other => return Err(format!("`tool` is {other:?}, expected {tool:?}")),
    }
    let results = obj
        .get("results")
        .and_then(Value::as_array)
        .ok_or("`results` is missing or not an array")?;
    for (i, r) in results.iter().enumerate() {
        let r = r
            .as_object()
            .ok_or_else(|| format!("results[{i}] is not an object"))?;
        if !r.get("status").is_some_and(Value::is_string) {
            return Err(format!("results[{i}] has no string `status`: {r:?}"));
        }
        if !r.get("seconds").is_some_and(Value::is_number) {
            return Err(format!("results[{i}] has no number `seconds`: {r:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_and_checks_the_shape() {
        let doc = document(
            "t",
            vec![json!({"name": "a", "status": "ok", "seconds": 0.5})],
            json!({"error": null, "tool": "ignored"}),
        );
        assert_eq!(doc["tool"], "t");
        assert!(doc.get("error").is_some());
        check_shape(&doc, "t").unwrap();
        assert!(check_shape(&doc, "u").is_err());
        let bad = document("t", vec![json!({"state": "applied"})], Value::Null);
        assert!(check_shape(&bad, "t").unwrap_err().contains("status"));
        assert!(check_shape(&json!([]), "t").is_err());
    }
}
