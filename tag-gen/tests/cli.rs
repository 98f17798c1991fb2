//! Runs the real `tag-gen` binary and asserts exact outputs and exit codes.

use assert_cmd::Command;
use std::collections::HashSet;

/// A `tag-gen` command with a clean environment: no inherited TAG_GEN_* pins.
fn tag_gen() -> Command {
    let mut c = Command::cargo_bin("tag-gen").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("TAG_GEN_") || k == "E2E_CONSUMER" || k == "E2E_REGISTRY" {
            c.env_remove(k);
        }
    }
    c
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(c: &mut Command) -> Out {
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn ok(c: &mut Command) -> String {
    let o = run(c);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    assert_eq!(o.stderr, "");
    o.stdout
}

fn fails(c: &mut Command, code: i32, stderr_has: &str) -> Out {
    let o = run(c);
    assert_eq!(o.code, code, "stdout: {} stderr: {}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(stderr_has),
        "stderr {:?} lacks {stderr_has:?}",
        o.stderr
    );
    o
}

fn is_infra_ref(line: &str, repo: &str, consumer: &str) -> bool {
    let Some(suffix) = line.strip_prefix(&format!("localhost/{repo}:{consumer}-")) else {
        return false;
    };
    suffix.len() == 8
        && suffix
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[test]
fn infra_default_format() {
    let out = ok(tag_gen().args(["infra", "datastorage", "--consumer", "aianalysis"]));
    let line = out.strip_suffix('\n').unwrap();
    assert!(is_infra_ref(line, "datastorage", "aianalysis"), "{line}");
}

#[test]
fn infra_pinned_suffix_every_format() {
    let base = |f: &str| {
        ok(tag_gen()
            .args([
                "infra",
                "datastorage",
                "--consumer",
                "aianalysis",
                "--format",
                f,
            ])
            .env("TAG_GEN_SUFFIX", "1884d123"))
    };
    assert_eq!(base("ref"), "localhost/datastorage:aianalysis-1884d123\n");
    assert_eq!(base("tag"), "aianalysis-1884d123\n");
    assert_eq!(base("repo"), "localhost/datastorage\n");
    assert_eq!(
        base("env"),
        "DATASTORAGE_IMAGE=localhost/datastorage:aianalysis-1884d123\n"
    );
    let doc: serde_json::Value = serde_json::from_str(&base("json")).unwrap();
    e2e_core::json::check_shape(&doc, "tag-gen").unwrap();
    assert_eq!(
        doc["results"],
        serde_json::json!([{"reference": "localhost/datastorage:aianalysis-1884d123",
            "registry": "localhost", "repository": "datastorage", "tag": "aianalysis-1884d123",
            "name": "datastorage", "kind": "infra", "consumer": "aianalysis",
            "suffix": "1884d123", "status": "generated", "seconds": 0.0}])
    );
    let json = ok(tag_gen()
        .args(["infra", "datastorage", "--consumer", "aianalysis", "--json"])
        .env("TAG_GEN_SUFFIX", "1884d123"));
    assert_eq!(json, base("json"));
}

#[test]
fn several_references_in_one_call() {
    let out = ok(tag_gen()
        .args([
            "infra",
            "--consumer",
            "aianalysis",
            "datastorage",
            "holmesgpt-api",
        ])
        .args(["mock-llm", "-o", "env"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    let (v, r) = lines[1].split_once('=').unwrap();
    assert_eq!(v, "HOLMESGPT_API_IMAGE");
    assert!(is_infra_ref(r, "holmesgpt-api", "aianalysis"), "{r}");
    assert!(lines[2].starts_with("MOCK_LLM_IMAGE=localhost/mock-llm:aianalysis-"));
}

#[test]
fn chosen_variable_names() {
    let out = ok(tag_gen()
        .args([
            "infra",
            "--consumer",
            "e2e",
            "a",
            "b",
            "-o",
            "env",
            "--var",
            "DS,HAPI",
        ])
        .env("TAG_GEN_SUFFIX", "00000000"));
    assert_eq!(
        out,
        "DS=localhost/a:e2e-00000000\nHAPI=localhost/b:e2e-00000000\n"
    );
    let out = ok(tag_gen()
        .args(["infra", "--consumer", "e2e", "a", "-o", "env"])
        .env("TAG_GEN_VAR", "X_REF")
        .env("TAG_GEN_SUFFIX", "00000000"));
    assert_eq!(out, "X_REF=localhost/a:e2e-00000000\n");
    fails(
        tag_gen().args([
            "infra",
            "--consumer",
            "e2e",
            "a",
            "b",
            "-o",
            "env",
            "--var",
            "ONE",
        ]),
        2,
        "--var was given 1 time(s) for 2 name(s)",
    );
    fails(
        tag_gen().args([
            "infra",
            "--consumer",
            "e2e",
            "a",
            "-o",
            "env",
            "--var",
            "1X",
        ]),
        2,
        "`1X` is not a valid variable name",
    );
}

#[test]
fn count_prints_distinct_references() {
    let out = ok(tag_gen().args(["infra", "x", "--consumer", "y", "--count", "50"]));
    let set: HashSet<&str> = out.lines().collect();
    assert_eq!(set.len(), 50);
    assert!(set.iter().all(|l| is_infra_ref(l, "x", "y")));
    let env = ok(tag_gen().args(["infra", "x", "--consumer", "y", "--count", "2", "-o", "env"]));
    let vars: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(vars, ["X_IMAGE_1", "X_IMAGE_2"]);
    fails(
        tag_gen()
            .args(["infra", "x", "--consumer", "y", "--count", "2"])
            .env("TAG_GEN_SUFFIX", "abcdef01"),
        2,
        "would print the same reference 2 times",
    );
    fails(
        tag_gen().args(["infra", "x", "--consumer", "y", "--count", "0"]),
        2,
        "0",
    );
}

#[test]
fn pinned_whole_tag_and_registry_options() {
    assert_eq!(
        ok(tag_gen()
            .args(["infra", "ds", "--consumer", "x"])
            .env("TAG_GEN_TAG", "ci-abc-42")),
        "localhost/ds:ci-abc-42\n"
    );
    assert_eq!(
        ok(tag_gen().args([
            "infra",
            "ds",
            "--consumer",
            "x",
            "--tag",
            "v1",
            "--registry",
            "quay.io:443"
        ])),
        "quay.io:443/ds:v1\n"
    );
    assert_eq!(
        ok(tag_gen()
            .args(["infra", "ds", "--consumer", "x", "--tag", "v1"])
            .env("E2E_REGISTRY", "")),
        "ds:v1\n"
    );
    fails(
        tag_gen().args(["infra", "ds", "--consumer", "x", "--tag", "latest"]),
        2,
        "--tag (TAG_GEN_TAG) would make the tag `latest`",
    );
    fails(
        tag_gen().args(["infra", "ds", "--consumer", "x", "--tag", ".v1"]),
        2,
        "--tag (TAG_GEN_TAG): the tag `.v1` starts with '.'",
    );
    fails(
        tag_gen().args(["infra", "ds", "--consumer", "x", "--registry", "noport"]),
        2,
        "--registry `noport` is not recognisable as a registry host",
    );
}

#[test]
fn consumer_from_environment() {
    assert_eq!(
        ok(tag_gen()
            .args(["infra", "ds"])
            .env("E2E_CONSUMER", "gateway")
            .env("TAG_GEN_SUFFIX", "0a0b0c0d")),
        "localhost/ds:gateway-0a0b0c0d\n"
    );
}

#[test]
fn sanitising_is_documented_behaviour() {
    let out = ok(tag_gen()
        .args(["infra", "Kubernaut/AI Analysis", "--consumer", "My Suite!!"])
        .env("TAG_GEN_SUFFIX", "12345678"));
    assert_eq!(out, "localhost/kubernaut/ai-analysis:my-suite-12345678\n");
}

#[test]
fn unusable_input_is_a_usage_error_naming_the_argument() {
    fails(
        tag_gen().args(["infra", "--consumer", "x", "--", "---"]),
        2,
        "infrastructure name `---` has nothing usable left",
    );
    fails(
        tag_gen().args(["infra", "ds", "--consumer", ""]),
        2,
        "--consumer is empty",
    );
    fails(
        tag_gen().args(["infra", "ds", "--consumer", "..."]),
        2,
        "--consumer `...` has nothing usable left",
    );
    let long = "x".repeat(120);
    fails(
        tag_gen().args(["infra", "ds", "--consumer", &long]),
        2,
        "at most 128 are allowed; shorten --consumer",
    );
    fails(tag_gen().args(["infra", "ds"]), 2, "--consumer <CONSUMER>");
    fails(tag_gen().args(["service", "!!"]), 2, "service name `!!`");
}

#[test]
fn service_tag_from_user_git_and_clock() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let s = std::process::Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(s.status.success(), "{s:?}");
        String::from_utf8(s.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "x"]);
    let head = git(&["rev-parse", "HEAD"]);
    let out = ok(tag_gen()
        .args(["service", "aianalysis", "-C"])
        .arg(repo.path())
        .env("USER", "Alice")
        .env("TAG_GEN_TIMESTAMP", "1734278400"));
    assert_eq!(
        out,
        format!(
            "localhost/kubernaut-aianalysis:aianalysis-alice-{}-1734278400\n",
            &head[..7]
        )
    );
    // Without a repository and with the user set explicitly.
    let none = tempfile::tempdir().unwrap();
    let out = ok(tag_gen()
        .args(["service", "gateway", "notification", "--user", "bob"])
        .args(["--timestamp", "1", "--prefix", "k-", "-C"])
        .arg(none.path()));
    assert_eq!(
        out,
        "localhost/k-gateway:gateway-bob-unknown-1\nlocalhost/k-notification:notification-bob-unknown-1\n"
    );
    let json = ok(tag_gen()
        .args(["service", "x", "--json"])
        .env("TAG_GEN_USER", "u")
        .env("TAG_GEN_GIT_HASH", "ABCDEF1")
        .env("TAG_GEN_TIMESTAMP", "7"));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    e2e_core::json::check_shape(&doc, "tag-gen").unwrap();
    assert_eq!(
        doc["results"],
        serde_json::json!([{"reference": "localhost/kubernaut-x:x-u-abcdef1-7",
            "registry": "localhost", "repository": "kubernaut-x", "tag": "x-u-abcdef1-7",
            "name": "x", "kind": "service", "user": "u", "git": "abcdef1", "timestamp": 7,
            "status": "generated", "seconds": 0.0}])
    );
}

#[test]
fn service_fallbacks_never_crash() {
    // No USER, no git on PATH: the OS account (or `unknown`) and `unknown`.
    let out = ok(tag_gen()
        .args(["service", "svc", "--timestamp", "5"])
        .env_remove("USER")
        .env("PATH", "/nonexistent"));
    let tag = out.trim().rsplit(':').next().unwrap().to_string();
    assert!(tag.starts_with("svc-"), "{tag}");
    assert!(tag.ends_with("-unknown-5"), "{tag}");
    // A user made only of symbols falls back to `unknown`.
    let out = ok(tag_gen()
        .args([
            "service",
            "svc",
            "--timestamp",
            "5",
            "--git-hash",
            "abc1234",
        ])
        .env("USER", "@@@"));
    assert_eq!(out, "localhost/kubernaut-svc:svc-unknown-abc1234-5\n");
    fails(
        tag_gen().args(["service", "s", "--count", "2"]),
        2,
        "--count applies to `infra` only",
    );
}

#[test]
fn check_and_parse() {
    let o = fails(
        tag_gen().args(["check", "localhost:5000/a/b:c", "foo/Bar:1", "x:-y"]),
        1,
        "invalid reference `foo/Bar:1`: repository path component 2 `Bar` contains the uppercase letter 'B'",
    );
    assert_eq!(o.stdout, "localhost:5000/a/b:c\n");
    assert!(o.stderr.contains("the tag `-y` starts with '-'"));
    assert!(o.stderr.contains("2 of 3 references are invalid"));
    assert_eq!(
        ok(tag_gen().args([
            "check",
            "localhost/kubernaut-aianalysis:aianalysis-alice-abc123f-1734278400"
        ])),
        "localhost/kubernaut-aianalysis:aianalysis-alice-abc123f-1734278400\n"
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    let out = ok(tag_gen().args(["parse", &format!("localhost:5000/team/app:v1@{digest}")]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["registry"], "localhost:5000");
    assert_eq!(v["repository"], "team/app");
    assert_eq!(v["name"], "localhost:5000/team/app");
    assert_eq!(v["tag"], "v1");
    assert_eq!(v["digest"], digest.as_str());
    let v: serde_json::Value =
        serde_json::from_str(&ok(tag_gen().args(["parse", "postgres"]))).unwrap();
    assert_eq!(v["registry"], serde_json::Value::Null);
    assert_eq!(v["tag"], serde_json::Value::Null);
    fails(tag_gen().args(["parse", "a//b"]), 1, "is empty");
}

#[test]
fn claim_dir_prevents_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let first = ok(tag_gen()
        .args([
            "infra",
            "ds",
            "--consumer",
            "x",
            "--suffix",
            "00000001",
            "--claim-dir",
        ])
        .arg(dir.path()));
    assert_eq!(first, "localhost/ds:x-00000001\n");
    fails(
        tag_gen()
            .args(["infra", "ds", "--consumer", "x", "--suffix", "00000001"])
            .env("TAG_GEN_CLAIM_DIR", dir.path()),
        1,
        "`localhost/ds:x-00000001` is already claimed in",
    );
    // Random suffixes redraw instead; 20 runs give 20 different references.
    let mut all = HashSet::new();
    for _ in 0..20 {
        let out = ok(tag_gen()
            .args(["infra", "ds", "--consumer", "x", "--claim-dir"])
            .arg(dir.path()));
        assert!(all.insert(out));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 21);
}

#[test]
fn help_completions_and_man() {
    let help = ok(tag_gen().arg("--help"));
    assert!(help.contains("Examples:"));
    assert!(help.contains("TAG_GEN_SUFFIX=deadbeef tag-gen infra"));
    let help = ok(tag_gen().args(["infra", "--help"]));
    for env in [
        "E2E_CONSUMER",
        "TAG_GEN_SUFFIX",
        "TAG_GEN_TAG",
        "TAG_GEN_FORMAT",
        "E2E_REGISTRY",
        "TAG_GEN_COUNT",
        "TAG_GEN_VAR",
        "TAG_GEN_CLAIM_DIR",
    ] {
        assert!(help.contains(env), "infra --help lacks {env}");
    }
    let bash = ok(tag_gen().args(["completions", "bash"]));
    assert!(bash.contains("_tag_gen()"), "{bash}");
    assert!(
        bash.contains("-o default tag-gen\n"),
        "bound to the real name: {bash}"
    );
    assert!(ok(tag_gen().args(["completions", "zsh"])).contains("#compdef tag-gen"));
    let dir = tempfile::tempdir().unwrap();
    let listed = ok(tag_gen().args(["man", "--out-dir"]).arg(dir.path()));
    assert_eq!(listed.lines().count(), 8);
    let page = std::fs::read_to_string(dir.path().join("tag-gen-infra.1")).unwrap();
    assert!(page.contains(".TH"));
    assert!(page.contains("consumer"));
    assert!(page.contains(".SH EXAMPLES\n.nf\n"), "{page}");
}

#[test]
fn conventions_old_names_globals_and_errors() {
    // Old names: still work, with a warning on stderr.
    let o = run(tag_gen()
        .args(["infra", "ds", "-c", "x", "-n", "2"])
        .env("TAG_GEN_REGISTRY", "reg.local"));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.lines().count(), 2);
    assert!(o.stdout.starts_with("reg.local/ds:x-"), "{}", o.stdout);
    for w in [
        "tag-gen: warning: -c is deprecated; use --consumer",
        "tag-gen: warning: -n is deprecated; use --count",
        "tag-gen: warning: environment variable TAG_GEN_REGISTRY is deprecated; use E2E_REGISTRY",
    ] {
        assert!(o.stderr.contains(w), "{w}: {}", o.stderr);
    }
    // Global flags before the subcommand; booleans in any spelling.
    let env = ok(tag_gen()
        .args(["-o", "env", "--var", "DS", "infra", "ds", "--consumer", "x"])
        .env("TAG_GEN_SUFFIX", "00000001"));
    assert_eq!(env, "DS=localhost/ds:x-00000001\n");
    for word in ["1", "yes", "ON"] {
        let json = ok(tag_gen()
            .args(["infra", "ds", "--consumer", "x"])
            .env("TAG_GEN_JSON", word));
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        e2e_core::json::check_shape(&doc, "tag-gen").unwrap();
    }
    let json = ok(tag_gen().args(["--json", "service", "a", "b"]));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    e2e_core::json::check_shape(&doc, "tag-gen").unwrap();
    assert_eq!(doc["results"].as_array().unwrap().len(), 2);
    // clap's own errors carry the tool's name, exit 2.
    let o = fails(tag_gen().args(["infra", "--bogus"]), 2, "");
    assert!(
        o.stderr
            .starts_with("tag-gen: error: unexpected argument '--bogus'"),
        "{}",
        o.stderr
    );
}

/// 16 concurrent processes x 1,250 tags. 32 random bits give ~0.05 expected duplicates among
/// 20,000 (birthday bound), so at most 2 are allowed; a clock-seeded generator gives thousands.
#[test]
fn twenty_thousand_tags_from_sixteen_processes_are_unique() {
    let bin = assert_cmd::cargo::cargo_bin("tag-gen");
    let children: Vec<_> = (0..16)
        .map(|_| {
            std::process::Command::new(&bin)
                .args([
                    "infra",
                    "datastorage",
                    "--consumer",
                    "e2e",
                    "--count",
                    "1250",
                ])
                .env_remove("TAG_GEN_SUFFIX")
                .env_remove("TAG_GEN_TAG")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all = Vec::new();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        all.extend(
            String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    assert_eq!(all.len(), 20_000);
    assert!(all.iter().all(|l| is_infra_ref(l, "datastorage", "e2e")));
    let unique: HashSet<&String> = all.iter().collect();
    let dups = all.len() - unique.len();
    assert!(dups <= 2, "{dups} duplicates among 20,000 tags");
}

#[test]
fn every_flag_reads_its_environment_variable() {
    let pin = |c: &mut Command| {
        c.env("TAG_GEN_SUFFIX", "abcdef01");
    };
    let mut c = tag_gen();
    pin(&mut c);
    assert_eq!(
        ok(c.args(["infra", "ds", "--consumer", "x"])
            .env("TAG_GEN_FORMAT", "tag")),
        "x-abcdef01\n"
    );
    let mut c = tag_gen();
    pin(&mut c);
    let json = ok(c
        .args(["infra", "ds", "--consumer", "x"])
        .env("TAG_GEN_JSON", "true"));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["results"][0]["reference"], "localhost/ds:x-abcdef01");
    let out = ok(tag_gen()
        .args(["infra", "ds", "--consumer", "x"])
        .env("TAG_GEN_COUNT", "3"));
    assert_eq!(out.lines().count(), 3);
    let repo = tempfile::tempdir().unwrap();
    let out = ok(tag_gen()
        .args(["service", "gw"])
        .env("TAG_GEN_PREFIX", "team-")
        .env("TAG_GEN_USER", "ci")
        .env("TAG_GEN_GIT_DIR", repo.path())
        .env("TAG_GEN_TIMESTAMP", "1700000000")
        .env("E2E_REGISTRY", "registry.local:5000"));
    assert_eq!(
        out,
        "registry.local:5000/team-gw:gw-ci-unknown-1700000000\n"
    );
    // Flags win over the environment.
    let out = ok(tag_gen()
        .args(["infra", "ds", "--consumer", "flag", "--suffix", "00000002"])
        .env("E2E_CONSUMER", "env")
        .env("TAG_GEN_SUFFIX", "00000001"));
    assert_eq!(out, "localhost/ds:flag-00000002\n");
    fails(
        tag_gen()
            .args(["infra", "ds", "--consumer", "x"])
            .env("TAG_GEN_FORMAT", "yaml"),
        2,
        "invalid value 'yaml'",
    );
}
