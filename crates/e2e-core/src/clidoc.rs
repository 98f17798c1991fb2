//! Man pages generated from a tool's clap definition: one page for the tool and one per
//! subcommand (`tool-sub.1`), the layout `man` expects. Each command's examples (its
//! `after_long_help`) become an EXAMPLES section printed as written: no filling, no
//! hyphenation, and ASCII hyphen-minus, so commands copied from the page run.

use crate::CliError;
use std::io::Write;
use std::path::Path;

/// Writes `<name>.1` and `<name>-<sub>.1` into `dir` and lists the written paths on `out`.
pub fn write_man_pages(
    cmd: clap::Command,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let fail = |what: String, e: std::io::Error| CliError::failure(format!("cannot {what}: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("create {}", dir.display()), e))?;
    let name = cmd.get_name().to_string();
    let mut pages = vec![(name.clone(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("{name}-{}", sub.get_name()), sub.clone()));
    }
    for (title, page) in pages {
        let path = dir.join(format!("{title}.1"));
        let buf =
            render(page, &title).map_err(|e| fail(format!("render the man page {title}"), e))?;
        std::fs::write(&path, buf).map_err(|e| fail(format!("write {}", path.display()), e))?;
        writeln!(out, "{}", path.display()).map_err(|e| fail("write to stdout".into(), e))?;
    }
    Ok(())
}

/// One page: clap_mangen's sections, with EXAMPLES in place of its reflowed EXTRA section.
pub fn render(cmd: clap::Command, title: &str) -> std::io::Result<Vec<u8>> {
    let examples = crate::cli::examples_of(&cmd);
    let cmd = cmd.after_long_help(None::<&str>).after_help(None::<&str>);
    let versioned = cmd.get_version().or(cmd.get_long_version()).is_some();
    let man = clap_mangen::Man::new(cmd).title(title.to_string());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    man.render_subcommands_section(&mut buf)?;
    if let Some(text) = examples {
        buf.extend_from_slice(examples_section(&text).as_bytes());
    }
    if versioned {
        man.render_version_section(&mut buf)?;
    }
    Ok(buf)
}

/// `.SH EXAMPLES` with the text between `.nf`/`.fi` (no fill, so no reflow or hyphenation).
pub fn examples_section(text: &str) -> String {
    let mut s = String::from(".SH EXAMPLES\n.nf\n");
    let body = text.strip_prefix("Examples:\n").unwrap_or(text);
    for line in body.lines() {
        let mut l = line.replace('\\', "\\e").replace('-', "\\-");
        if l.starts_with('.') || l.starts_with('\'') {
            l.insert_str(0, "\\&");
        }
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str(".fi\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_are_a_no_fill_section() {
        let s = examples_section("Examples:\n  tool --flag a\\\n.dot\n");
        assert_eq!(
            s,
            ".SH EXAMPLES\n.nf\n  tool \\-\\-flag a\\e\n\\&.dot\n.fi\n"
        );
    }

    #[test]
    fn pages_have_examples_not_extra() {
        let cmd = clap::Command::new("x-tool").after_long_help("Examples:\n  x-tool --go\n");
        let page = String::from_utf8(render(cmd, "x-tool").unwrap()).unwrap();
        assert!(
            page.contains(".SH EXAMPLES\n.nf\n  x\\-tool \\-\\-go\n.fi\n"),
            "{page}"
        );
        assert!(!page.contains("EXTRA"), "{page}");
    }
}
