//! Man pages generated from a tool's clap definition: one page for the tool and one per
//! subcommand (`tool-sub.1`), the layout `man` expects.

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
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .title(title.clone())
            .render(&mut buf)
            .map_err(|e| fail(format!("render the man page {title}"), e))?;
        std::fs::write(&path, buf).map_err(|e| fail(format!("write {}", path.display()), e))?;
        writeln!(out, "{}", path.display()).map_err(|e| fail("write to stdout".into(), e))?;
    }
    Ok(())
}
