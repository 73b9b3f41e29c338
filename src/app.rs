//! Orchestration: one function per subcommand that reads like the pipeline.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(crate::exit::TOOL_FAILURE);
        }
    };
    match cli.command {
        Command::Run(_args) => ExitCode::from(crate::exit::TOOL_FAILURE),
        Command::Serve(args) => match runtime.block_on(crate::mock_server::serve_main(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(crate::exit::USAGE)
            }
        },
    }
}
