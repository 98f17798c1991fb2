//! Every migrate command's --json against docs/conventions.md's one shape, on the testbed's
//! PostgreSQL: success and failure, up, status, down, verify and a dry run.

mod common;

use common::*;

fn doc(r: &Run, what: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: not one JSON document ({e}):\n{}", r.stdout));
    e2e_core::json::check_shape(&v, "migrate").unwrap_or_else(|e| panic!("{what}: {e}\n{v}"));
    v
}

#[test]
fn every_command_prints_the_one_json_shape() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mjson");
    let dir = dir_with(&[
        (
            "001_a.sql",
            "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose Down\nDROP TABLE a;\n",
        ),
        (
            "002_b.sql",
            "-- +goose Up\nCREATE TABLE b (x int);\n-- +goose Down\nDROP TABLE b;\n",
        ),
    ]);
    let run = |args: &[&str]| migrate(dir.path(), &db.url, args);

    let r = run(&["up", "--dry-run", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    doc(&r, "up --dry-run");
    let r = run(&["--json", "up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = doc(&r, "up");
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    let r = run(&["status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = doc(&r, "status");
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "applied"),
        "{v}"
    );
    let r = run(&["verify", "--table", "a", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    doc(&r, "verify");
    let r = run(&["down", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    doc(&r, "down");
    // A failure is one document too.
    let r = run(&["verify", "--table", "nope", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    doc(&r, "verify (failing)");
}
