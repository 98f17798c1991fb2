use std::process::ExitCode;

fn main() -> ExitCode {
    let cli =
        match e2e_core::cli::parse::<kind_load::cli::Cli>("kind-load", &kind_load::cli::COMPAT) {
            Ok(cli) => cli,
            Err(code) => return code,
        };
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("kind-load", kind_load::run(cli, &mut stdout))
}
