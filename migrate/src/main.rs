use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = migrate::cli::Cli::parse();
    e2e_core::exit::finish("migrate", migrate::run(cli))
}
