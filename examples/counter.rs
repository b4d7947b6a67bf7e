//! The library in a plain axum service, no Leptos: a visit counter kept in a server-side session
//! on SQLite, and a page listing the sessions of the "signed-in" user with where they came from.
//!
//! ```sh
//! cargo run --example counter                       # serves http://127.0.0.1:3100
//! curl -c jar -b jar http://127.0.0.1:3100/         # visit 1, visit 2, ...
//! curl -c jar -b jar -d 'username=demo&password=correct horse battery' http://127.0.0.1:3100/sign-in
//! curl -c jar -b jar http://127.0.0.1:3100/sessions
//! curl -c jar -b jar -X POST http://127.0.0.1:3100/sign-out
//! ```
//!
//! `EXAMPLE_ADDR` and `EXAMPLE_DATABASE_URL` change the address and the database. `make test` runs
//! it and drives it with curl (`make example`).

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use console_sessions::accounts::{AccountError, AccountRefusal, Accounts, AccountsConfig, NewUser};
use console_sessions::sessions::SessionError;
use console_sessions::{Database, Session, SessionConfig, SessionEngine, SessionLayer};

/// The one account the example has.
const USERNAME: &str = "demo";
const PASSWORD: &str = "correct horse battery";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("EXAMPLE_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://data/counter-example.db".to_owned());
    let addr: SocketAddr = std::env::var("EXAMPLE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3100".to_owned())
        .parse()?;
    let db = Database::connect(&url).await?;
    db.migrate().await?;
    let engine = SessionEngine::new(db.clone(), SessionConfig::default());
    let accounts = Accounts::new(db, engine.clone(), AccountsConfig::default());
    let demo = NewUser {
        username: USERNAME.to_owned(),
        password: PASSWORD.to_owned(),
        ..NewUser::default()
    };
    match accounts.create_user(demo).await {
        Ok(_) | Err(AccountError::Refused(AccountRefusal::UsernameTaken)) => {}
        Err(error) => return Err(error.into()),
    }
    let app = Router::new()
        .route("/", get(count))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/sessions", get(sessions))
        .with_state(accounts)
        .layer(SessionLayer::new(engine));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("serving http://{}", listener.local_addr()?);
    // With the peer's address, sessions know where their client is.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// Counts this browser's visits in its session.
async fn count(session: Session) -> Result<String, SessionError> {
    let visits: u64 = session.get("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", visits).await?;
    Ok(format!("visit {visits}\n"))
}

#[derive(serde::Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// Checks the password (throttled per account and address), then links the session to the user
/// under a new token, so one planted before is worthless.
async fn sign_in(
    State(accounts): State<Accounts>,
    session: Session,
    Form(form): Form<Credentials>,
) -> Result<StatusCode, (StatusCode, String)> {
    let failed = |error: &dyn std::fmt::Display| (StatusCode::UNAUTHORIZED, format!("{error}\n"));
    let user = accounts
        .authenticate(&form.username, &form.password, session.client().ip)
        .await
        .map_err(|error| failed(&error))?;
    session.cycle_key().await.map_err(|error| failed(&error))?;
    session
        .set_user_id(Some(user.id))
        .await
        .map_err(|error| failed(&error))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the session: its row is deleted and its cookie removed.
async fn sign_out(session: Session) -> Result<StatusCode, SessionError> {
    session.flush().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's sessions: what the library knows about each.
async fn sessions(
    State(accounts): State<Accounts>,
    session: Session,
) -> Result<(StatusCode, String), SessionError> {
    let Some(user_id) = session.user_id().await? else {
        return Ok((StatusCode::UNAUTHORIZED, "sign in first\n".to_owned()));
    };
    let mut text = String::new();
    for record in accounts.engine().list_for_user(user_id).await? {
        text.push_str(&format!(
            "{} {} {}\n",
            record.public_id,
            record.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            record.user_agent.unwrap_or_default(),
        ));
    }
    Ok((StatusCode::OK, text))
}
