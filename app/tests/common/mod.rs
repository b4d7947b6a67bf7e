//! `spawn_app()`: the whole application on port 0 with a fresh database, and a cookie-keeping client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use console_sessions::testing::TestDatabase;
use console_sessions::Backend;
use console_sessions_app::server::config::Settings;
use console_sessions_app::server::startup::Application;
use console_sessions_app::server::state::AppState;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub test_db: TestDatabase,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    let test_db = TestDatabase::new(backend)
        .await
        .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"));
    let settings = Settings::for_tests(test_db.url.clone());
    let app = Application::build(&settings)
        .await
        .expect("the application builds");
    let address = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending(), std::time::Duration::ZERO));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        state,
        test_db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
}
