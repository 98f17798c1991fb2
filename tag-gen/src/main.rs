use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tag_gen::cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("tag-gen", tag_gen::run(cli, &mut stdout))
}
