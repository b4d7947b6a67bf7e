//! The `console-sessions` binary: parse the command line, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use console_sessions_app::cli;
use console_sessions_app::server::config::Cli;

fn main() -> ExitCode {
    // Server-side rendering of deep view trees nests many futures; unoptimised builds need more than
    // tokio's default 2 MiB per worker.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
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
