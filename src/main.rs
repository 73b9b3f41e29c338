//! Thin entry point: parse, dispatch, map errors to exit codes.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sdload::cli::Cli::parse();
    sdload::app::main(cli)
}
