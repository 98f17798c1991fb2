use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match e2e_core::cli::parse::<tag_gen::cli::Cli>("tag-gen", &tag_gen::cli::COMPAT) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    e2e_core::exit::finish("tag-gen", tag_gen::run(cli, &mut stdout))
}
