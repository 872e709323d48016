use std::process::ExitCode;

fn main() -> ExitCode {
    gantry::cli::main(std::env::args_os())
}
