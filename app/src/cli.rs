//! Carrying out a parsed command line. Beside [`crate::startup`], above `server`, because `serve`
//! runs the built application (the command line's definition, with the settings, stays in
//! [`crate::server::config`]).

use std::time::Duration;

use console_sessions::accounts::{Accounts, NewUser};
use console_sessions::{Database, SessionEngine};

use crate::server::config::{Cli, Command, LogFormat};
use crate::startup::{Application, StartupError};

/// Sets up logging: human-readable or JSON lines, filtered by `RUST_LOG` (default `info`).
///
/// Lines written while a request is served carry its `request` span (request id, method, route,
/// path): in text, as a `request{…}:` prefix; in JSON, as a `span` object beside the event's own
/// fields.
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sqlx::query=error,tower_http=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal, never into a file or a journal.
        .with_ansi(std::io::stdout().is_terminal());
    // A second initialisation (as in tests) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Runs the command; the error is one line for the terminal.
pub async fn run(cli: Cli) -> Result<(), StartupError> {
    match cli.command.clone().unwrap_or(Command::Serve) {
        Command::Seed { sessions, users } => {
            let db =
                Database::connect_with(&cli.settings.database_url, &cli.settings.pool_settings())
                    .await?;
            db.migrate().await?;
            let bar = indicatif::ProgressBar::new(sessions);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} seeding [{bar:40}] {pos}/{len} sessions ({per_sec}, {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let plan = console_sessions::seed::SeedPlan { users, sessions };
            let written = console_sessions::seed::seed(&db, plan, |done| bar.set_position(done))
                .await
                .map_err(|e| StartupError::Sessions(e.to_string()))?;
            bar.finish_and_clear();
            println!("{users} users and {written} sessions seeded");
            db.close().await;
            Ok(())
        }
        Command::Createsuperuser { username, email } => {
            create_superuser(&cli, &username, email.as_deref()).await
        }
        Command::Changepassword { username } => change_password(&cli, &username).await,
        Command::Serve => {
            let app = Application::build(&cli.settings).await?;
            if let Some(metrics) = app.metrics_addr() {
                tracing::info!(address = %metrics, "metrics on http://{metrics}/metrics");
            }
            tracing::info!(
                address = %app.local_addr(),
                backend = %app.state().db.backend(),
                "serving on http://{}",
                app.local_addr()
            );
            let every = Duration::from_secs(cli.settings.clear_expired_every);
            app.run_until_stopped(shutdown_signal(), every).await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Migrate => {
            let db =
                Database::connect_with(&cli.settings.database_url, &cli.settings.pool_settings())
                    .await?;
            db.migrate().await?;
            tracing::info!(backend = %db.backend(), "migrations applied");
            db.close().await;
            Ok(())
        }
        Command::Clearsessions { batch } => {
            let db =
                Database::connect_with(&cli.settings.database_url, &cli.settings.pool_settings())
                    .await?;
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

/// The environment variable `createsuperuser` reads the password from, as Django's
/// `DJANGO_SUPERUSER_PASSWORD`.
pub const SUPERUSER_PASSWORD_ENV: &str = "CONSOLE_SESSIONS_SUPERUSER_PASSWORD";

async fn create_superuser(
    cli: &Cli,
    username: &str,
    email: Option<&str>,
) -> Result<(), StartupError> {
    let password = superuser_password()?;
    let db =
        Database::connect_with(&cli.settings.database_url, &cli.settings.pool_settings()).await?;
    db.migrate().await?;
    let engine = SessionEngine::new(db.clone(), cli.settings.session_config());
    let accounts = Accounts::new(db.clone(), engine, cli.settings.accounts_config());
    let created = accounts
        .create_user(NewUser {
            username: username.to_owned(),
            email: email.map(str::to_owned),
            password,
            is_staff: true,
        })
        .await;
    db.close().await;
    match created {
        Ok(user) => {
            println!("Staff user {:?} created (id {}).", user.username, user.id);
            Ok(())
        }
        Err(error) => Err(account_error(error)),
    }
}

/// The environment variable `changepassword` reads the new password from, for scripts.
pub const PASSWORD_ENV: &str = "CONSOLE_SESSIONS_PASSWORD";

/// `changepassword USERNAME`: sets the password (checked as a sign-up's), ends every session of
/// the user, and queues the "password changed" mail (sent by the server's worker).
async fn change_password(cli: &Cli, username: &str) -> Result<(), StartupError> {
    let db =
        Database::connect_with(&cli.settings.database_url, &cli.settings.pool_settings()).await?;
    db.migrate().await?;
    let result = async {
        // Read first: a bad MAIL_URL must fail before the password changes, not after.
        let outbox = console_sessions::mail::Outbox::new(db.clone(), cli.settings.mail_config()?)?;
        let mail =
            crate::server::mail::Mailer::new(outbox, cli.settings.mail_origin(cli.settings.addr)?);
        let engine = SessionEngine::new(db.clone(), cli.settings.session_config());
        let accounts = Accounts::new(db.clone(), engine, cli.settings.accounts_config());
        let Some(user) = accounts
            .user_by_username(username)
            .await
            .map_err(account_error)?
        else {
            return Err(StartupError::Accounts(format!(
                "user {username:?} does not exist"
            )));
        };
        println!("Changing password for user {:?}", user.username);
        let password = read_password(PASSWORD_ENV)?;
        let ended = accounts
            .set_password(user.id, &password)
            .await
            .map_err(account_error)?;
        if let Err(error) = mail.password_changed(&user).await {
            tracing::warn!(%error, "cannot queue the password changed mail");
        }
        println!(
            "Password changed successfully for user {:?}; {ended} session{} signed out.",
            user.username,
            if ended == 1 { "" } else { "s" }
        );
        Ok(())
    }
    .await;
    db.close().await;
    result
}

fn account_error(error: console_sessions::accounts::AccountError) -> StartupError {
    if error.is_internal() {
        StartupError::Accounts(format!("{error} ({error:?})"))
    } else {
        StartupError::Accounts(error.to_string())
    }
}

fn superuser_password() -> Result<String, StartupError> {
    read_password(SUPERUSER_PASSWORD_ENV)
}

/// A new password: from the environment variable `env` when set, else asked twice on the terminal.
fn read_password(env: &str) -> Result<String, StartupError> {
    use std::io::IsTerminal;
    if let Ok(password) = std::env::var(env) {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(StartupError::Accounts(format!(
            "no terminal to ask for the password: set {env}"
        )));
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| StartupError::Accounts(format!("cannot read the password: {e}")))
    };
    let password = read("Password: ")?;
    if read("Password (again): ")? != password {
        return Err(StartupError::Accounts(
            "the two passwords do not match".into(),
        ));
    }
    Ok(password)
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
