use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = ds_deploy::cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("ds-deploy", ds_deploy::run(cli, &mut stdout))
}
