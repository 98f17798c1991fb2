//! docs/conventions.md, checked mechanically on every tool's real command definition: the
//! short-flag table, the environment-variable scheme, bash completion run in bash, examples
//! never wrapped (help and man), and the built binaries going through the shared driver.

use clap::{Command, CommandFactory};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

/// Every tool: its name and its command as its `main` parses it.
fn tools() -> Vec<(&'static str, Command)> {
    vec![
        ("tag-gen", tag_gen::cli::Cli::command()),
        ("image-build", image_build::cli::Cli::command()),
        ("kind-load", kind_load::cli::Cli::command()),
        ("migrate", migrate::cli::Cli::command()),
        ("ds-deploy", ds_deploy::cli::Cli::command()),
    ]
}

/// A command and every subcommand below it, with their paths (`["migrate", "down"]`), built
/// (globals propagated, help and version flags added) as clap builds them for parsing.
fn all_commands(cmd: Command) -> Vec<(Vec<String>, Command)> {
    fn walk(path: Vec<String>, cmd: &Command, out: &mut Vec<(Vec<String>, Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(p, sub, out);
        }
        out.push((path, cmd.clone()));
    }
    let mut cmd = cmd;
    cmd.build();
    let mut out = Vec::new();
    walk(vec![cmd.get_name().to_string()], &cmd, &mut out);
    out
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The short-flag table of docs/conventions.md: letter -> long name.
fn documented_shorts() -> BTreeMap<char, String> {
    let doc = std::fs::read_to_string(repo_root().join("docs/conventions.md")).unwrap();
    let mut table = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let (Some(short), Some(long)) = (
            cells[1]
                .strip_prefix("`-")
                .and_then(|s| s.strip_suffix('`')),
            cells[2]
                .strip_prefix("`--")
                .and_then(|s| s.strip_suffix('`')),
        ) else {
            continue;
        };
        let mut chars = short.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            assert!(
                table.insert(c, long.to_string()).is_none(),
                "-{c} twice in the table"
            );
        }
    }
    assert!(
        table.len() > 5,
        "no short-flag table found in docs/conventions.md"
    );
    table
}

#[test]
fn no_short_flag_has_two_meanings_and_the_table_is_complete() {
    let table = documented_shorts();
    let mut seen: BTreeMap<char, BTreeSet<String>> = BTreeMap::new();
    let mut used_by: BTreeMap<char, BTreeSet<String>> = BTreeMap::new();
    for (tool, cmd) in tools() {
        for (path, c) in all_commands(cmd) {
            for a in c.get_arguments() {
                let Some(short) = a.get_short() else { continue };
                let long = a.get_long().unwrap_or("<no long name>").to_string();
                seen.entry(short).or_default().insert(long.clone());
                used_by
                    .entry(short)
                    .or_default()
                    .insert(format!("{tool}: {} --{long}", path.join(" ")));
            }
        }
        let _ = tool;
    }
    let mut problems = Vec::new();
    for (short, longs) in &seen {
        if longs.len() > 1 {
            problems.push(format!("-{short} means {longs:?}: {:?}", used_by[short]));
        }
        match table.get(short) {
            Some(l) if longs.contains(l) => {}
            Some(l) => problems.push(format!(
                "-{short} is --{l} in docs/conventions.md but {longs:?} in {:?}",
                used_by[short]
            )),
            None => problems.push(format!(
                "-{short} ({longs:?}) is missing from the table in docs/conventions.md: {:?}",
                used_by[short]
            )),
        }
    }
    for short in table.keys() {
        if !seen.contains_key(short) {
            problems.push(format!("-{short} is in the table but no tool has it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The variables several tools share, and the flag each belongs to.
const SHARED: &[(&str, &str)] = &[
    ("E2E_ENGINE", "engine"),
    ("E2E_ENGINE_HOST", "host"),
    ("E2E_CONSUMER", "consumer"),
    ("E2E_KIND_CLUSTER", "cluster"),
    ("E2E_KUBECONFIG", "kubeconfig"),
    ("E2E_DATABASE_URL", "database-url"),
    ("E2E_REGISTRY", "registry"),
];

fn upper(s: &str) -> String {
    s.to_ascii_uppercase().replace('-', "_")
}

/// The names docs/conventions.md allows for `--long` of subcommand `sub` of `tool`.
fn allowed_env(tool: &str, sub: Option<&str>, long: &str) -> Vec<String> {
    let t = upper(tool);
    let f = upper(long);
    let mut names = vec![format!("{t}_{f}"), format!("{t}_{f}S")];
    if let Some(s) = sub {
        let s = upper(s);
        names.push(format!("{t}_{s}_{f}"));
        names.push(format!("{t}_{s}_{f}S"));
    }
    names.extend(
        SHARED
            .iter()
            .filter(|(_, flag)| *flag == long)
            .map(|(v, _)| v.to_string()),
    );
    names
}

#[test]
fn every_flag_has_an_environment_variable_of_the_documented_scheme() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (tool, cmd) in tools() {
        for (path, c) in all_commands(cmd) {
            let sub = path.get(1).map(String::as_str);
            for a in c.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                if a.is_positional() || matches!(long, "help" | "version") {
                    continue;
                }
                checked += 1;
                let allowed = allowed_env(tool, sub, long);
                match a.get_env().and_then(|e| e.to_str()) {
                    None => problems.push(format!("{}: --{long} has no variable", path.join(" "))),
                    Some(env) if !allowed.iter().any(|n| n == env) => problems.push(format!(
                        "{}: --{long} reads {env}; the scheme allows {allowed:?}",
                        path.join(" ")
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(checked > 60, "only {checked} flags seen");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs the tool's bash completion function for `words` (the last one being completed) in a
/// real bash and returns COMPREPLY.
fn complete(tool: &str, cmd: Command, words: &[&str]) -> Vec<String> {
    let mut script = Vec::new();
    e2e_core::cli::write_completions(clap_complete::Shell::Bash, cmd, tool, &mut script).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{tool}.bash"));
    std::fs::write(&file, &script).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\n\
         fn=$(complete -p {tool} | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         [ -n \"$fn\" ] || {{ echo 'no completion bound to {tool}' >&2; exit 3; }}\n\
         COMP_WORDS=({})\nCOMP_CWORD={cword}\n\
         \"$fn\" {tool} '{}' '{prev}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display(),
        quoted.join(" "),
        words[cword],
    );
    let out = Process::new("bash")
        .arg("-c")
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash failed for {words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Why write_completions exists: clap_complete's own bash script for a hyphenated name does
/// not complete subcommand flags. When this fails, clap_complete has fixed it and the
/// workaround in e2e_core::cli::write_completions can go.
#[test]
fn plain_clap_complete_misses_subcommand_flags_of_hyphenated_names() {
    let mut cmd = tag_gen::cli::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "tag-gen", &mut script);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tag-gen.bash");
    std::fs::write(&file, &script).unwrap();
    let program = format!(
        "source '{}'\nfn=$(complete -p tag-gen | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         COMP_WORDS=(tag-gen '')\nCOMP_CWORD=1\n\"$fn\" tag-gen '' tag-gen\n\
         printf 'top:%s\\n' \"${{COMPREPLY[@]}}\"\n\
         COMP_WORDS=(tag-gen infra --)\nCOMP_CWORD=2\n\"$fn\" tag-gen -- infra\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display()
    );
    let out = Process::new("bash")
        .arg("-c")
        .arg(&program)
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout);
    // The script loaded and completes the top level (so the check below means something).
    assert!(got.lines().any(|l| l == "top:infra"), "{got}");
    assert!(
        !got.lines().any(|l| l == "--consumer"),
        "clap_complete now completes subcommand flags itself: {got}"
    );
}

#[test]
fn bash_completes_subcommand_flags_and_enum_values_under_the_real_names() {
    let mut checked = 0;
    for (tool, cmd) in tools() {
        let mut built = cmd.clone();
        built.build();
        for sub in built
            .get_subcommands()
            .filter(|s| !matches!(s.get_name(), "help" | "completions"))
        {
            let Some(flag) = sub
                .get_arguments()
                .filter(|a| !a.is_global_set())
                .find_map(|a| a.get_long().filter(|l| !matches!(*l, "help" | "version")))
            else {
                continue;
            };
            let got = complete(tool, cmd.clone(), &[tool, sub.get_name(), "--"]);
            checked += 1;
            assert!(
                got.contains(&format!("--{flag}")),
                "{tool} {} --<TAB> offers {got:?}, not --{flag}",
                sub.get_name()
            );
        }
    }
    assert!(checked >= 10, "only {checked} subcommands checked");
    for tool in ["image-build", "kind-load"] {
        let cmd = tools().into_iter().find(|(t, _)| *t == tool).unwrap().1;
        let got = complete(tool, cmd, &[tool, "--engine", ""]);
        assert_eq!(got, ["auto", "docker", "podman"], "{tool} --engine <TAB>");
    }
}

/// The example lines of a command (its `after_long_help`), those worth checking.
fn example_lines(cmd: &Command) -> Vec<String> {
    e2e_core::cli::examples_of(cmd)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim().len() > 20)
        .map(str::to_string)
        .collect()
}

#[test]
fn examples_are_never_wrapped_in_help_or_man() {
    let mut checked = 0;
    for (tool, cmd) in tools() {
        for (path, c) in all_commands(cmd.clone()) {
            let examples = example_lines(&c);
            if examples.is_empty() {
                continue;
            }
            // As `main` shows it, on a narrow terminal: the options wrap, the examples not.
            let mut root = e2e_core::cli::prepare(cmd.clone(), Some(60));
            let mut target = &mut root;
            for p in &path[1..] {
                target = target.find_subcommand_mut(p).unwrap();
            }
            let help = target.render_long_help().to_string();
            let lines: BTreeSet<&str> = help.lines().collect();
            for e in &examples {
                checked += 1;
                assert!(
                    lines.contains(e.as_str()),
                    "{}: example line split or missing in --help:\n{e}\n---\n{help}",
                    path.join(" ")
                );
            }
            let title = path.join("-");
            let page = e2e_core::clidoc::render(c.clone(), &title).unwrap();
            let page = String::from_utf8(page).unwrap();
            let section = page
                .split(".SH EXAMPLES\n.nf\n")
                .nth(1)
                .and_then(|s| s.split("\n.fi\n").next())
                .unwrap_or_else(|| panic!("{title}: no EXAMPLES .nf section:\n{page}"));
            assert!(!page.contains(".SH EXTRA"), "{title}");
            for e in &examples {
                let roff = e.replace('\\', "\\e").replace('-', "\\-");
                assert!(
                    section
                        .lines()
                        .any(|l| l == roff || l == format!("\\&{roff}")),
                    "{title}: example not verbatim in the man page: {e}"
                );
            }
        }
        let _ = tool;
    }
    assert!(checked > 30, "only {checked} example lines checked");
}

/// The built binaries (beside this test's own, when `make test` built them) show the same
/// help and completion script as the shared driver makes: every `main` goes through it.
#[test]
fn the_binaries_use_the_shared_driver() {
    let exe = std::env::current_exe().unwrap();
    let bin_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let mut ran = 0;
    for (tool, cmd) in tools() {
        let bin = bin_dir.join(tool);
        if !bin.exists() {
            eprintln!(
                "SKIP {tool}: {} not built (cargo build --bins)",
                bin.display()
            );
            continue;
        }
        let newer = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if newer(&bin) < newer(&exe) && std::env::var_os("NEXTEST").is_none() {
            eprintln!("SKIP {tool}: {} is older than this test", bin.display());
            continue;
        }
        let out = Process::new(&bin)
            .arg("--help")
            .env_remove("COLUMNS")
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool} --help");
        let want = e2e_core::cli::prepare(cmd.clone(), Some(0))
            .try_get_matches_from([tool, "--help"])
            .unwrap_err()
            .render()
            .to_string();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            want.trim_end(),
            "{tool}"
        );
        let out = Process::new(&bin)
            .args(["completions", "bash"])
            .output()
            .unwrap();
        let mut script = Vec::new();
        e2e_core::cli::write_completions(
            clap_complete::Shell::Bash,
            cmd.clone(),
            tool,
            &mut script,
        )
        .unwrap();
        assert_eq!(out.stdout, script, "{tool} completions bash");
        let dir = tempfile::tempdir().unwrap();
        let out = Process::new(&bin)
            .args(["man", "--out-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool} man");
        let page = std::fs::read_to_string(dir.path().join(format!("{tool}.1"))).unwrap();
        assert!(page.contains(".SH EXAMPLES\n.nf\n"), "{tool}.1");
        let out = Process::new(&bin).arg("--no-such-flag").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{tool}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("{tool}: error: ")),
            "{tool}: {err}"
        );
        ran += 1;
    }
    eprintln!("{ran} binaries checked");
}

/// Splits a command line as a shell would for the simple lines examples are: words, `'...'`
/// and `"..."` quoting, `VAR=value` prefixes dropped. `None` for lines with shell syntax
/// beyond that (pipes, substitutions), which are not checked.
fn shell_words(line: &str) -> Option<Vec<String>> {
    if line.contains(['|', '$', '`', '<', '>', ';', '#']) {
        return None;
    }
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    let start = words.iter().position(|w| !w.contains('='))?;
    Some(words.split_off(start))
}

/// Every example command is one the tool accepts as written: no removed or deprecated flag,
/// no bad value (a copied example must run).
#[test]
fn every_example_command_parses() {
    let mut checked = 0;
    for (tool, cmd) in tools() {
        for (path, c) in all_commands(cmd.clone()) {
            let text = e2e_core::cli::examples_of(&c).unwrap_or_default();
            // Join `\`-continued lines.
            let joined = text.replace("\\\n", " ");
            for line in joined.lines().map(str::trim) {
                let Some(words) = shell_words(line) else {
                    continue;
                };
                if words.first().map(String::as_str) != Some(tool) {
                    continue;
                }
                checked += 1;
                let r = e2e_core::cli::prepare(cmd.clone(), Some(0)).try_get_matches_from(&words);
                if let Err(e) = r {
                    panic!("{}: example `{line}` does not parse:\n{e}", path.join(" "));
                }
            }
        }
    }
    assert!(checked > 25, "only {checked} example commands checked");
}
