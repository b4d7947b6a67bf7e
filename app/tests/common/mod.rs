//! `spawn_app()`: the whole application on port 0 with a fresh database, and a cookie-keeping client.
//!
//! [`Browser`] is a client that behaves like one browser: its own cookie jar (readable, so tests can
//! see the session token), its own `User-Agent`, and forms posted the way a browser without
//! JavaScript posts them (`Accept: text/html`, `Origin`, the page's anti-forgery token).
//!
//! Also: the real binary as a child process ([`server`]), a throwaway PostgreSQL server ([`pg`]), a
//! real nginx doing forward authentication ([`nginx`]), and plain-client helpers for load and outage
//! tests (sign up, read a session cookie).
#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

pub mod nginx;
pub mod pg;
pub mod server;

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL, as the tests
/// `<name>::on_sqlite` and `<name>::on_postgres` (use `#[macro_use] mod common;`).
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use console_sessions::Backend;

            #[tokio::test]
            async fn on_sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    )*};
}

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};

use console_sessions::accounts::{AccountsConfig, NewUser};
use console_sessions::sessions::{now, SessionRecord, SessionToken, UserSessionStore};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, SessionStore};
use console_sessions_app::server::config::Settings;
use console_sessions_app::server::state::AppState;
use console_sessions_app::startup::{router, Application};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION, ORIGIN};
use reqwest::{Response, Url};

/// The password every user made by [`TestApp::create_user`] has.
pub const PASSWORD: &str = "correct horse battery";
/// Firefox on Linux, the default user agent of a [`Browser`].
pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
/// Chrome on a Mac.
pub const DESKTOP_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) \
    AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// Safari on an iPhone.
pub const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1";
/// What a browser sends as `Accept` for a page or a plain form post.
const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Leptos marks "generating the route list" with one flag for the whole process, and a resource
/// first polled while it is set never loads (leptos-rs/leptos#4773). Tests run in parallel, so one
/// test building its application could leave another test's page hanging for ever: building takes
/// this lock exclusively, and a page request takes it shared.
static ROUTE_GENERATION: LazyLock<tokio::sync::RwLock<()>> =
    LazyLock::new(|| tokio::sync::RwLock::new(()));

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

/// The application with [`Settings::for_tests`] changed by `configure`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let test_db = new_database(backend).await;
    let mut settings = Settings::for_tests(test_db.url.clone());
    configure(&mut settings);
    spawn_app_for(test_db, &settings).await
}

/// The application with these settings, on `test_db` (kept alive with the app).
pub async fn spawn_app_for(test_db: TestDatabase, settings: &Settings) -> TestApp {
    let building = ROUTE_GENERATION.write().await;
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    drop(building);
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending(), std::time::Duration::ZERO));
    // On PostgreSQL the cache serves nothing until it listens for other nodes' evictions, which
    // takes a moment after the server starts: tests that look at the cache wait for it.
    if let Some(cache) = state.sessions.cache() {
        let started = std::time::Instant::now();
        while !cache.is_caching() && started.elapsed() < std::time::Duration::from_secs(10) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            cache.is_caching(),
            "the session cache listens for evictions"
        );
    }
    let mut test_app = TestApp::new(address, state, test_db);
    test_app.metrics_address = metrics_address;
    test_app
}

/// The application with the account service's settings changed by `configure` (throttling, password
/// length), which [`Settings`] does not expose: the application is built as usual, then served with
/// an account service of its own over the same database and session engine.
pub async fn spawn_app_with_accounts(
    backend: Backend,
    configure: impl FnOnce(&mut AccountsConfig),
) -> TestApp {
    spawn_app_with_settings_and_accounts(backend, |_| {}, configure).await
}

/// [`spawn_app_with_accounts`], with [`Settings::for_tests`] changed by `settings` first (trusted
/// proxies, say).
pub async fn spawn_app_with_settings_and_accounts(
    backend: Backend,
    settings: impl FnOnce(&mut Settings),
    configure: impl FnOnce(&mut AccountsConfig),
) -> TestApp {
    let test_db = new_database(backend).await;
    let mut settings_for_tests = Settings::for_tests(test_db.url.clone());
    settings(&mut settings_for_tests);
    let settings = settings_for_tests;
    let building = ROUTE_GENERATION.write().await;
    let app = Application::build(&settings)
        .await
        .expect("the application builds");
    let mut state = app.state().clone();
    drop(app);
    let mut config = settings.accounts_config();
    configure(&mut config);
    state.accounts =
        console_sessions::accounts::Accounts::new(state.db.clone(), state.sessions.clone(), config);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let local_addr = listener.local_addr().unwrap();
    state.leptos_options.site_addr = local_addr;
    let service = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    drop(building);
    tokio::spawn(async move { axum::serve(listener, service).await });
    TestApp::new(format!("http://{local_addr}"), state, test_db)
}

async fn new_database(backend: Backend) -> TestDatabase {
    TestDatabase::new(backend)
        .await
        .unwrap_or_else(|e| panic!("cannot create a {backend} test database: {e}"))
}

impl TestApp {
    fn new(address: String, state: AppState, test_db: TestDatabase) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            address,
            metrics_address: None,
            client,
            state,
            test_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A new browser with Firefox's user agent and no cookies.
    pub fn browser(&self) -> Browser {
        self.browser_with_agent(FIREFOX)
    }

    /// A new browser with this user agent and no cookies.
    pub fn browser_with_agent(&self, user_agent: &str) -> Browser {
        self.browser_with_headers(user_agent, &[])
    }

    /// A new browser with this user agent and no cookies, whose every request carries these
    /// headers (such as the `X-Forwarded-For` a trusted proxy adds in front of it).
    pub fn browser_with_headers(
        &self,
        user_agent: &str,
        headers: &[(&'static str, &str)],
    ) -> Browser {
        Browser::new(&self.address, user_agent, headers, None)
    }

    /// A new browser (Firefox) that presents this session token, as if it had been planted in it.
    pub fn browser_with_session(&self, token: &str) -> Browser {
        let browser = self.browser();
        browser.set_cookie(&format!("session={token}"));
        browser
    }

    /// Creates a user with [`PASSWORD`] through the account service; returns its id.
    pub async fn create_user(&self, username: &str) -> i64 {
        self.create_account(username, false).await
    }

    /// Creates an active staff user with [`PASSWORD`] through the account service; returns its id.
    pub async fn create_staff(&self, username: &str) -> i64 {
        self.create_account(username, true).await
    }

    async fn create_account(&self, username: &str, is_staff: bool) -> i64 {
        self.state
            .accounts
            .create_user(NewUser {
                username: username.to_owned(),
                email: Some(format!("{username}@example.test")),
                password: PASSWORD.to_owned(),
                is_staff,
            })
            .await
            .expect("the user is created")
            .id
    }

    /// A browser (with this user agent) signed in as `username` with [`PASSWORD`].
    pub async fn signed_in(&self, username: &str, user_agent: &str) -> Browser {
        let browser = self.browser_with_agent(user_agent);
        browser.sign_in(username, PASSWORD).await;
        browser
    }

    /// The database row of the session with this token, read past any cache (`None`: no live row).
    pub async fn session_row(&self, token: &str) -> Option<SessionRecord> {
        let hash = SessionToken::parse(token).expect("a token").hash();
        self.state
            .sessions
            .db_store()
            .expect("an engine over the database")
            .load(&hash, now())
            .await
            .expect("the database answers")
    }

    /// Whether the `cached_db` cache holds the session with this token.
    pub fn is_cached(&self, token: &str) -> bool {
        let hash = SessionToken::parse(token).expect("a token").hash();
        self.state
            .sessions
            .cache()
            .expect("the cached_db backend")
            .is_cached(&hash)
    }

    /// Live sessions of a user, from the database.
    pub async fn sessions_of(&self, user_id: i64) -> Vec<SessionRecord> {
        self.state
            .sessions
            .db_store()
            .expect("an engine over the database")
            .list_for_user(user_id, now())
            .await
            .expect("the database answers")
    }
}

/// One browser: a cookie jar, a user agent, and forms posted as a browser without JavaScript does.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: Url,
}

impl Browser {
    /// A browser with this user agent and no cookies that reaches the site at `base` (the app, or a
    /// proxy in front of it), every request carrying `headers`, from the local address `from` when
    /// given (any of 127.0.0.0/8 reaches a listener on 127.0.0.1).
    pub fn new(
        base: &str,
        user_agent: &str,
        headers: &[(&'static str, &str)],
        from: Option<IpAddr>,
    ) -> Self {
        let jar = Arc::new(Jar::default());
        let mut defaults = HeaderMap::new();
        for (name, value) in headers {
            defaults.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .user_agent(user_agent)
            .default_headers(defaults)
            .local_address(from)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            jar,
            base: Url::parse(base).unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.base.join(path).unwrap().to_string()
    }

    /// The value of one of this browser's cookies for the site.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base)?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.to_owned())
    }

    /// The session token this browser holds.
    pub fn session_token(&self) -> Option<String> {
        self.cookie("session")
    }

    /// Puts a cookie (`name=value`) in this browser's jar.
    pub fn set_cookie(&self, cookie: &str) {
        self.jar
            .add_cookie_str(&format!("{cookie}; Path=/"), &self.base);
    }

    /// `GET` as a browser asks for a page.
    pub async fn get_page(&self, path: &str) -> Response {
        self.get_page_with(path, &[]).await
    }

    /// `GET` as a browser asks for a page, with these extra headers (`Sec-Fetch-Dest`, say).
    pub async fn get_page_with(&self, path: &str, headers: &[(&'static str, &str)]) -> Response {
        let _rendering = ROUTE_GENERATION.read().await;
        let mut request = self.client.get(self.url(path)).header(ACCEPT, ACCEPT_HTML);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// `GET` of a page with this `Accept` header, as clients other than browsers ask (curl sends
    /// `*/*`). reqwest sends `*/*` when no other is given; [`raw_get`] sends none at all.
    pub async fn get_page_accepting(&self, path: &str, accept: &str) -> Response {
        let _rendering = ROUTE_GENERATION.read().await;
        self.client
            .get(self.url(path))
            .header(ACCEPT, accept)
            .send()
            .await
            .unwrap()
    }

    /// `GET` of a server function returning JSON.
    pub async fn get_json(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap()
    }

    /// What `/api/account/viewer` says about this browser.
    pub async fn viewer(&self) -> serde_json::Value {
        let response = self.get_json("/api/account/viewer").await;
        assert_eq!(response.status(), 200, "the viewer answers");
        response.json().await.unwrap()
    }

    /// The username this browser is signed in as, if any.
    pub async fn signed_in_as(&self) -> Option<String> {
        self.viewer().await["user"]["username"]
            .as_str()
            .map(str::to_owned)
    }

    /// The anti-forgery token of this browser's forms (the page gets it the same way).
    pub async fn csrf_token(&self) -> String {
        self.viewer().await["csrf_token"]
            .as_str()
            .expect("a csrf_token")
            .to_owned()
    }

    /// Posts a form exactly as given, with these extra headers (a browser's own are `Accept` and
    /// `Origin`, which `headers` may replace).
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&'static str, &str)],
    ) -> Response {
        let mut map = HeaderMap::new();
        map.insert(ACCEPT, HeaderValue::from_static(ACCEPT_HTML));
        map.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let origin = self.base.origin().ascii_serialization();
        map.insert(ORIGIN, HeaderValue::from_str(&origin).unwrap());
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        self.client
            .post(self.url(path))
            .headers(map)
            .body(encode(fields))
            .send()
            .await
            .unwrap()
    }

    /// Submits a form as a browser without JavaScript: the page's token is added to `fields`.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf_token().await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[]).await
    }

    /// Calls a server function as the hydrated page does (JSON back), with the page's token.
    pub async fn call(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf_token().await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[("accept", "application/json")])
            .await
    }

    /// Submits the sign-in form; the response as it came.
    pub async fn try_sign_in(&self, username: &str, password: &str) -> Response {
        self.submit(
            "/api/account/sign-in",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// Signs in, asserting it worked (302 to the devices page).
    pub async fn sign_in(&self, username: &str, password: &str) {
        let response = self.try_sign_in(username, password).await;
        assert_eq!(response.status(), 302, "sign-in answers with a redirect");
        assert_eq!(
            location(&response),
            "/account/sessions",
            "signed in as {username}"
        );
    }
}

/// A form body, `application/x-www-form-urlencoded`.
pub fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                urlencoding::encode(name),
                urlencoding::encode(value)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Location` of a response (empty when there is none).
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The `?error=` code a failed plain form post was sent back with.
pub fn error_code(response: &Response) -> Option<String> {
    query_value(&location(response), "error")
}

/// One query parameter of a local URL such as `/sign-in?error=csrf`.
pub fn query_value(local_url: &str, name: &str) -> Option<String> {
    let url = Url::parse("http://localhost")
        .unwrap()
        .join(local_url)
        .ok()?;
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.into_owned())
}

/// A client that keeps cookies and does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
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

/// Creates an account with [`PASSWORD`] through `/api/account/sign-up` (which signs it in).
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

/// The status line and headers of `GET path` sent to `address` (`http://host:port`) as bare as
/// HTTP/1.1 allows: a `Host` and nothing else, not even the `Accept` every HTTP library adds.
/// Header names are lower case.
pub async fn raw_get(address: &str, path: &str) -> (u16, Vec<(String, String)>) {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://").to_owned();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let _rendering = ROUTE_GENERATION.read().await;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .expect("the server answers within 30 s");
        answer
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers)
}
