use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = image_build::cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("image-build", image_build::run(cli, &mut stdout))
}
