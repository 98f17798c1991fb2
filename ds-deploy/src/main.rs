use std::process::ExitCode;

fn main() -> ExitCode {
    let cli =
        match e2e_core::cli::parse::<ds_deploy::cli::Cli>("ds-deploy", &ds_deploy::cli::COMPAT) {
            Ok(cli) => cli,
            Err(code) => return code,
        };
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("ds-deploy", ds_deploy::run(cli, &mut stdout))
}
