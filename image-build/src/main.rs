use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match e2e_core::cli::parse::<image_build::cli::Cli>(
        "image-build",
        &image_build::cli::COMPAT,
    ) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("image-build", image_build::run(cli, &mut stdout))
}
