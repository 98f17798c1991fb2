use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = kind_load::cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("kind-load", kind_load::run(cli, &mut stdout))
}
