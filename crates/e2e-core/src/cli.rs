//! The command-line conventions every tool's `main` goes through (docs/conventions.md):
//! old flag and environment names still accepted with a deprecation warning, `--help` wrapped
//! to the terminal (not at all off a terminal) with its examples never wrapped, clap's own
//! errors prefixed with the tool's name (exit 2), and bash completion that works for the
//! tools' hyphenated names.

use clap::{ArgMatches, Command, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

/// An environment variable read under another name: `old` fills `var` when `var` is unset.
#[derive(Debug, Clone, Copy)]
pub struct EnvAlias {
    pub var: &'static str,
    pub old: &'static str,
    /// A deprecated name warns; an honoured one (`DATABASE_URL`, `KUBECONFIG`) does not.
    pub deprecated: bool,
}

/// An old command-line spelling rewritten to the new one, with a warning.
#[derive(Debug, Clone, Copy)]
pub struct ArgAlias {
    /// `-n`, `-c`: a short flag that lost its meaning in this tool.
    pub old: &'static str,
    /// `--cluster`.
    pub new: &'static str,
    /// Whether the flag takes a value (so `-nVALUE` is the flag with VALUE).
    pub takes_value: bool,
    /// Only after this subcommand word (`verify`), or anywhere when empty.
    pub after: &'static str,
}

/// What a tool still accepts under old names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Compat {
    pub env: &'static [EnvAlias],
    pub args: &'static [ArgAlias],
}

/// Parses the process's arguments into `T` the way every tool does; on a usage error or
/// `--help` it has printed what to print and returns the exit code.
pub fn parse<T: CommandFactory + FromArgMatches>(
    tool: &str,
    compat: &Compat,
) -> Result<T, ExitCode> {
    let mut warnings = apply_env_aliases(compat.env);
    let (args, more) = rewrite_args(std::env::args_os().collect(), compat.args);
    warnings.extend(more);
    for w in &warnings {
        eprintln!("{tool}: warning: {w}");
    }
    let width = help_width();
    parse_from(tool, prepare(T::command(), width), args).map_err(|(code, text, to_stderr)| {
        if to_stderr {
            let _ = std::io::stderr().write_all(text.as_bytes());
        } else {
            let _ = std::io::stdout().write_all(text.as_bytes());
        }
        ExitCode::from(code)
    })
}

/// The parse itself: `Err((exit code, text, whether the text goes to stderr))`.
pub fn parse_from<T: FromArgMatches>(
    tool: &str,
    cmd: Command,
    args: Vec<OsString>,
) -> Result<T, (u8, String, bool)> {
    let matches: ArgMatches = cmd
        .try_get_matches_from(args)
        .map_err(|e| report(tool, &e))?;
    T::from_arg_matches(&matches).map_err(|e| report(tool, &e))
}

/// How a clap error is shown: help and version as clap renders them, errors as one
/// `tool: error: ...` line (plus clap's hint lines) on stderr with exit 2.
fn report(tool: &str, e: &clap::Error) -> (u8, String, bool) {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => (0, text, false),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => (crate::exit::USAGE, text, true),
        _ => {
            let text = text.strip_prefix("error: ").unwrap_or(&text);
            (crate::exit::USAGE, format!("{tool}: error: {text}"), true)
        }
    }
}

/// Help wraps to the terminal's width; off a terminal not at all (unless `COLUMNS` says).
fn help_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok());
    if std::io::stdout().is_terminal() {
        None
    } else {
        Some(columns.unwrap_or(0))
    }
}

/// The command as the tools show it: each command's examples (its `after_long_help`) moved
/// into its help template, where clap prints text as it is instead of re-wrapping it (a
/// wrapped example breaks when copied); `width` as for `Command::term_width` (0: no wrapping),
/// `None` for the terminal's width.
pub fn prepare(cmd: Command, width: Option<usize>) -> Command {
    let mut cmd = move_examples(cmd);
    if let Some(w) = width {
        cmd = cmd.term_width(w);
    }
    cmd.max_term_width(0)
}

fn move_examples(mut cmd: Command) -> Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for s in subs {
        cmd = cmd.mut_subcommand(s, move_examples);
    }
    let Some(examples) = examples_of(&cmd) else {
        return cmd;
    };
    let has_args = cmd.get_arguments().any(|a| !a.is_hide_set())
        || cmd.get_subcommands().next().is_some()
        || !cmd.is_disable_help_flag_set();
    let head = if has_args {
        "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}\n\n"
    } else {
        "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n"
    };
    cmd.help_template(format!("{head}{examples}"))
        .after_long_help(None::<&str>)
        .after_help(None::<&str>)
}

/// A command's examples text: its `after_long_help`, else its `after_help`.
pub fn examples_of(cmd: &Command) -> Option<String> {
    cmd.get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .filter(|s| !s.trim().is_empty())
}

/// Fills unset variables from their old names; returns the deprecation warnings.
pub fn apply_env_aliases(aliases: &[EnvAlias]) -> Vec<String> {
    // Present counts, even empty: `TAG_GEN_REGISTRY=` means "no registry".
    let set = |k: &str| std::env::var_os(k).is_some();
    let mut warnings = Vec::new();
    for a in aliases {
        if !set(a.old) {
            continue;
        }
        if a.deprecated {
            warnings.push(format!(
                "environment variable {} is deprecated; use {}",
                a.old, a.var
            ));
        }
        if !set(a.var) {
            if let Some(v) = std::env::var_os(a.old) {
                // Before any thread exists: main calls this first.
                std::env::set_var(a.var, v);
            }
        }
    }
    warnings
}

/// Rewrites old spellings (`-n x` to `--cluster x`); returns the arguments and the warnings.
pub fn rewrite_args(args: Vec<OsString>, aliases: &[ArgAlias]) -> (Vec<OsString>, Vec<String>) {
    let mut out = Vec::with_capacity(args.len());
    let mut warnings: Vec<String> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        let Some(s) = arg.to_str().filter(|_| i > 0 && !rest).map(str::to_string) else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        if !s.starts_with('-') {
            words.push(s);
            out.push(arg);
            continue;
        }
        let hit = aliases.iter().find_map(|a| {
            if !a.after.is_empty() && !words.iter().any(|w| w == a.after) {
                return None;
            }
            if s == a.old {
                return Some((a, a.new.to_string()));
            }
            let tail = s.strip_prefix(a.old)?;
            if let Some(v) = tail.strip_prefix('=') {
                return Some((a, format!("{}={v}", a.new)));
            }
            (a.takes_value && a.old.len() == 2).then(|| (a, format!("{}={tail}", a.new)))
        });
        match hit {
            Some((a, new)) => {
                let w = format!("{} is deprecated; use {}", a.old, a.new);
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
                out.push(new.into());
            }
            None => out.push(arg),
        }
    }
    (out, warnings)
}

/// Writes a completion script. Bash scripts are generated under the name with `_` for `-`
/// and then bound to the real name: clap_complete spells the subcommand states of a
/// hyphenated name two different ways, so subcommand flags never completed.
pub fn write_completions(
    shell: clap_complete::Shell,
    cmd: Command,
    bin: &str,
    out: &mut dyn Write,
) -> Result<(), crate::CliError> {
    let mut cmd = cmd;
    let fail = |e: std::io::Error| crate::CliError::failure(format!("cannot write to stdout: {e}"));
    if shell != clap_complete::Shell::Bash || !bin.contains('-') {
        clap_complete::generate(shell, &mut cmd, bin, out);
        return Ok(());
    }
    let alias = bin.replace('-', "_");
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, &alias, &mut buf);
    let script = String::from_utf8_lossy(&buf);
    let suffix = format!(" {alias}");
    for line in script.lines() {
        let line = match line.trim_start().starts_with("complete -F ") {
            true => match line.strip_suffix(&suffix) {
                Some(head) => format!("{head} {bin}"),
                None => line.to_string(),
            },
            false => line.to_string(),
        };
        writeln!(out, "{line}").map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn old_short_flags_are_rewritten_with_a_warning() {
        const A: &[ArgAlias] = &[
            ArgAlias {
                old: "-n",
                new: "--cluster",
                takes_value: true,
                after: "",
            },
            ArgAlias {
                old: "-t",
                new: "--table",
                takes_value: true,
                after: "verify",
            },
        ];
        let (args, w) = rewrite_args(os(&["t", "-n", "x", "-nkind", "-t", "a"]), A);
        assert_eq!(
            args,
            os(&["t", "--cluster", "x", "--cluster=kind", "-t", "a"])
        );
        assert_eq!(w, vec!["-n is deprecated; use --cluster"]);
        let (args, _) = rewrite_args(os(&["t", "verify", "-t", "a", "--", "-n"]), A);
        assert_eq!(args, os(&["t", "verify", "--table", "a", "--", "-n"]));
    }

    #[test]
    fn usage_errors_carry_the_tool_name_and_exit_2() {
        #[derive(clap::Parser, Debug)]
        struct T {
            #[arg(long)]
            n: u32,
        }
        let cmd = prepare(T::command(), Some(0));
        let (code, text, stderr) =
            parse_from::<T>("x-tool", cmd, os(&["x-tool", "--n", "z"])).unwrap_err();
        assert_eq!((code, stderr), (2, true));
        assert!(
            text.starts_with("x-tool: error: invalid value 'z'"),
            "{text}"
        );
        let cmd = prepare(T::command(), Some(0));
        let (code, _, stderr) =
            parse_from::<T>("x-tool", cmd, os(&["x-tool", "--help"])).unwrap_err();
        assert_eq!((code, stderr), (0, false));
    }

    #[test]
    fn examples_are_never_wrapped() {
        let example =
            "  x-tool --a-long-flag value --another-long-flag value --third value --fourth value";
        let cmd = Command::new("x-tool")
            .arg(clap::Arg::new("a").long("a-long-flag").help(
                "A description long enough to be wrapped at a narrow width, many words here.",
            ))
            .after_long_help(format!("Examples:\n{example}\n  # {{braces}} kept"));
        let help = prepare(cmd, Some(40)).render_long_help().to_string();
        assert!(help.contains(example), "{help}");
        assert!(help.contains("# {braces} kept"), "{help}");
        // The options still wrap at the width asked for.
        assert!(
            help.lines()
                .all(|l| l.len() <= 40 || l.starts_with("  x-tool")),
            "{help}"
        );
    }
}
