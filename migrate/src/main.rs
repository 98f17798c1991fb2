use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match e2e_core::cli::parse::<migrate::cli::Cli>("migrate", &migrate::cli::COMPAT) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("migrate", migrate::run(cli, &mut stdout))
}
