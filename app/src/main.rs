//! The `console-sessions` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use console_sessions_app::server::{cli, config::Cli};

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is the normal case; a malformed one is worth a warning.
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("warning: ignoring .env: {error}");
        }
    }
    let cli = Cli::parse();
    cli::init_tracing(cli.settings.log_format);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
