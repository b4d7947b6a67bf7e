//! The session layer through a real axum router: cookies, strictness, proxies, failures.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use console_sessions::testing::TestDatabase;
use console_sessions::{Session, SessionConfig, SessionEngine, SessionLayer};
use tower::ServiceExt;

async fn count(session: Session) -> Result<String, console_sessions::sessions::SessionError> {
    let n: u64 = session.get("count").await?.unwrap_or(0) + 1;
    session.insert("count", n).await?;
    Ok(n.to_string())
}

async fn peek(session: Session) -> Result<String, console_sessions::sessions::SessionError> {
    Ok(format!("{:?}", session.get::<u64>("count").await?))
}

async fn cycle(session: Session) -> Result<&'static str, console_sessions::sessions::SessionError> {
    session.cycle_key().await?;
    Ok("cycled")
}

async fn flush(session: Session) -> Result<&'static str, console_sessions::sessions::SessionError> {
    session.flush().await?;
    Ok("flushed")
}

async fn ip(session: Session) -> Result<String, console_sessions::sessions::SessionError> {
    session.insert("seen", true).await?;
    Ok(String::new())
}

struct App {
    router: Router,
    engine: SessionEngine,
    test_db: TestDatabase,
}

async fn app(config: SessionConfig) -> App {
    let test_db = TestDatabase::sqlite().await.unwrap();
    let engine = SessionEngine::new(test_db.db.clone(), config);
    let router = Router::new()
        .route("/count", get(count))
        .route("/peek", get(peek))
        .route("/cycle", get(cycle))
        .route("/flush", get(flush))
        .route("/ip", get(ip))
        .route("/static", get(|| async { "static" }))
        .layer(SessionLayer::new(engine.clone()));
    App {
        router,
        engine,
        test_db,
    }
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    body: String,
}

impl Reply {
    fn token(&self) -> String {
        let set = self.set_cookie.as_deref().expect("a Set-Cookie header");
        let pair = set.split(';').next().unwrap();
        pair.split_once('=').unwrap().1.to_owned()
    }
}

impl App {
    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.get_from(path, cookie, "198.51.100.1:5000", &[]).await
    }

    async fn get_from(
        &self,
        path: &str,
        cookie: Option<&str>,
        peer: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::empty()).unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            set_cookie,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }
}

#[tokio::test]
async fn requests_that_do_not_use_the_session_get_no_cookie_and_no_query() {
    let app = app(SessionConfig::default()).await;
    let before = app.engine.db_store().unwrap().query_count();
    let reply = app.get("/static", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookie.is_none());
    let reply = app.get("/peek", None).await;
    assert_eq!(reply.body, "None");
    assert!(reply.set_cookie.is_none());
    assert_eq!(app.engine.db_store().unwrap().query_count(), before);
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);
}

#[tokio::test]
async fn the_first_write_sets_an_http_only_lax_cookie_that_carries_the_session() {
    let app = app(SessionConfig::default()).await;
    let first = app.get("/count", None).await;
    assert_eq!(first.body, "1");
    let set = first.set_cookie.clone().unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http by default: {set}");
    let cookie = format!("session={}", first.token());
    let second = app.get("/count", Some(&cookie)).await;
    assert_eq!(second.body, "2");
    // A modified session renews the cookie's lifetime, as Django does, with the same token.
    assert_eq!(second.token(), first.token());
    let third = app.get("/peek", Some(&cookie)).await;
    assert!(
        third.set_cookie.is_none(),
        "a read within the activity interval sets nothing"
    );
    assert_eq!(app.test_db.session_rows().await.unwrap(), 1);
}

#[tokio::test]
async fn secure_configuration_uses_the_host_prefix_and_secure_flag() {
    let app = app(SessionConfig {
        secure: true,
        cookie_name: SessionConfig::default_cookie_name(true).to_owned(),
        ..SessionConfig::default()
    })
    .await;
    let reply = app.get("/count", None).await;
    let set = reply.set_cookie.unwrap();
    assert!(set.starts_with("__Host-session="), "{set}");
    assert!(set.contains("Secure"), "{set}");
    assert!(!set.contains("Domain"), "{set}");
}

#[tokio::test]
async fn malformed_and_unknown_cookies_are_refused_and_removed() {
    let app = app(SessionConfig::default()).await;
    let long = format!("session={}", "A".repeat(10_000));
    for cookie in [
        "session=garbage",
        "session=",
        long.as_str(),
        "session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "=; ;;session",
    ] {
        let reply = app.get("/peek", Some(cookie)).await;
        assert_eq!(reply.status, StatusCode::OK, "{cookie}");
        assert_eq!(reply.body, "None");
        if cookie.starts_with("session=") {
            let set = reply.set_cookie.unwrap();
            assert!(set.contains("Max-Age=0"), "stale cookie removed: {set}");
        }
    }
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);
}

#[tokio::test]
async fn a_cycled_token_replaces_the_old_one_which_is_then_refused() {
    let app = app(SessionConfig::default()).await;
    let old = app.get("/count", None).await.token();
    let cycled = app.get("/cycle", Some(&format!("session={old}"))).await;
    let new = cycled.token();
    assert_ne!(old, new);
    assert_eq!(
        app.get("/peek", Some(&format!("session={new}"))).await.body,
        "Some(1)"
    );
    assert_eq!(
        app.get("/peek", Some(&format!("session={old}"))).await.body,
        "None"
    );
}

#[tokio::test]
async fn flushing_removes_the_cookie_and_the_row() {
    let app = app(SessionConfig::default()).await;
    let token = app.get("/count", None).await.token();
    let reply = app.get("/flush", Some(&format!("session={token}"))).await;
    assert!(reply.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(app.test_db.session_rows().await.unwrap(), 0);
}

#[tokio::test]
async fn a_database_that_is_down_gives_503_and_never_a_panic() {
    let app = app(SessionConfig::default()).await;
    app.test_db.db.close().await;
    let reply = app.get("/count", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.set_cookie.is_none());
    let reply = app
        .get(
            "/peek",
            Some("session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // What never touches the session still works.
    assert_eq!(app.get("/static", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn client_address_comes_from_a_trusted_proxy_only() {
    let app = app(SessionConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..SessionConfig::default()
    })
    .await;
    let forwarded = [("x-forwarded-for", "192.0.2.44, 10.0.0.9")];
    let trusted = app.get_from("/ip", None, "10.0.0.1:1234", &forwarded).await;
    let untrusted = app
        .get_from("/ip", None, "203.0.113.1:1234", &forwarded)
        .await;
    let garbage = app
        .get_from(
            "/ip",
            None,
            "10.0.0.1:1234",
            &[("x-forwarded-for", "evil, 1.2.3.4")],
        )
        .await;
    let mut ips = Vec::new();
    for reply in [trusted, untrusted, garbage] {
        let token = console_sessions::sessions::SessionToken::parse(&reply.token()).unwrap();
        let record = app
            .engine
            .store()
            .load(&token.hash(), console_sessions::sessions::now())
            .await
            .unwrap()
            .unwrap();
        ips.push(record.ip.unwrap().to_string());
    }
    // Garbage a client wrote left of the address its proxy appended hides nothing: the walk from
    // the right finds that address first.
    assert_eq!(ips, ["192.0.2.44", "203.0.113.1", "1.2.3.4"]);
}

#[tokio::test]
async fn https_behind_a_trusted_proxy_makes_the_cookie_secure() {
    let app = app(SessionConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..SessionConfig::default()
    })
    .await;
    let reply = app
        .get_from(
            "/count",
            None,
            "127.0.0.1:9",
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(reply.set_cookie.unwrap().contains("Secure"));
}
