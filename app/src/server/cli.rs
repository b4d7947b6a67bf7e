//! Carrying out a parsed command line.

use std::time::Duration;

use console_sessions::{Database, SessionEngine};

use super::config::{Cli, Command, LogFormat};
use super::startup::{Application, StartupError};

/// Sets up logging: human-readable or JSON lines, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second initialisation (as in tests) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the command; the error is one line for the terminal.
pub async fn run(cli: Cli) -> Result<(), StartupError> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(&cli.settings).await?;
            tracing::info!(
                address = %app.local_addr(),
                backend = %app.state().db.backend(),
                "serving on http://{}",
                app.local_addr()
            );
            let every = Duration::from_secs(cli.settings.clear_expired_every);
            app.run_until_stopped(shutdown_signal(), every).await
        }
        Command::Migrate => {
            let db = Database::connect(&cli.settings.database_url).await?;
            db.migrate().await?;
            tracing::info!(backend = %db.backend(), "migrations applied");
            db.close().await;
            Ok(())
        }
        Command::Clearsessions { batch } => {
            let db = Database::connect(&cli.settings.database_url).await?;
            db.migrate().await?;
            let engine = SessionEngine::new(db.clone(), cli.settings.session_config());
            let cleared = engine
                .clear_expired(batch)
                .await
                .map_err(|e| StartupError::Sessions(e.to_string()))?;
            println!("{cleared} expired sessions deleted");
            db.close().await;
            Ok(())
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
