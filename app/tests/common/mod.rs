//! `spawn_app()`: the whole application on port 0 with a fresh database, and a cookie-keeping client.
//! Also: signing up and in over HTTP, and reading a session cookie out of a response.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pg;
pub mod server;

use console_sessions::testing::TestDatabase;
use console_sessions::Backend;
use console_sessions_app::server::config::Settings;
use console_sessions_app::server::startup::Application;
use console_sessions_app::server::state::AppState;

/// A password every test account can use (long enough for the default policy).
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub address: String,
    /// The separate metrics listener, when the settings asked for one.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub test_db: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// The application on a fresh database of `backend`, with test settings changed by `configure`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let test_db = TestDatabase::new(backend)
        .await
        .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
    let mut settings = Settings::for_tests(test_db.url.clone());
    configure(&mut settings);
    spawn_app_for(test_db, &settings).await
}

/// The application with these settings, on `test_db` (kept alive with the app).
pub async fn spawn_app_for(test_db: TestDatabase, settings: &Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending(), std::time::Duration::ZERO));
    TestApp {
        address,
        metrics_address,
        client: client(),
        state,
        test_db,
    }
}

/// A client that keeps cookies and does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}

/// The form token for `client` (the viewer call also gives it the token cookie).
pub async fn csrf_token(client: &reqwest::Client, base: &str) -> reqwest::Result<String> {
    let viewer: serde_json::Value = client
        .get(format!("{base}/api/account/viewer"))
        .header("accept", "application/json")
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(viewer["csrf_token"].as_str().unwrap_or_default().to_owned())
}

/// Posts a form to a server function as the hydrated page does (JSON answer, no redirect).
pub async fn post_form(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}{path}"))
        .header("accept", "application/json")
        .form(fields)
        .send()
        .await
}

/// Creates an account through `/api/account/sign-up` (which signs it in).
pub async fn sign_up(
    client: &reqwest::Client,
    base: &str,
    username: &str,
) -> reqwest::Result<reqwest::Response> {
    let token = csrf_token(client, base).await?;
    post_form(
        client,
        base,
        "/api/account/sign-up",
        &[
            ("csrf_token", &token),
            ("username", username),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await
}

/// Signs in through `/api/account/sign-in`.
pub async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Result<reqwest::Response> {
    let token = csrf_token(client, base).await?;
    post_form(
        client,
        base,
        "/api/account/sign-in",
        &[
            ("csrf_token", &token),
            ("username", username),
            ("password", password),
        ],
    )
    .await
}

/// The value the response sets the `session` cookie to, if it sets one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.strip_prefix("session="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .find(|value| !value.is_empty())
}

/// Who the server says holds this session cookie: the username, or `None` when signed out.
/// Sent without a cookie store, so only this cookie counts.
pub async fn username_for(base: &str, cookie: &str) -> reqwest::Result<Option<String>> {
    let viewer: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/account/viewer"))
        .header("accept", "application/json")
        .header("cookie", format!("session={cookie}"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(viewer["user"]["username"].as_str().map(str::to_owned))
}
