//! The library's own sign-in and sign-out (`Session::sign_in`, `Session::sign_out`) and the events
//! subscribers hear once changes are stored: a sign-in, and every way a session ends. Each case
//! runs on {SQLite, PostgreSQL} × {db, cached_db}.

use std::time::Duration;

use console_sessions::sessions::{
    now, AuthMethod, ClientInfo, CookieAction, EndCause, Ended, SessionEvent, SessionToken,
};
use console_sessions::testing::TestDatabase;
use console_sessions::{Backend, Session, SessionBackend, SessionConfig, SessionEngine};
use tokio::sync::broadcast::Receiver;

struct Ctx {
    name: String,
    engine: SessionEngine,
    test_db: TestDatabase,
}

impl Ctx {
    async fn new(backend: Backend, session_backend: SessionBackend) -> Self {
        let test_db = TestDatabase::new(backend).await.unwrap();
        let config = SessionConfig {
            backend: session_backend,
            ..SessionConfig::default()
        };
        Self {
            name: format!("{backend}/{session_backend}"),
            engine: SessionEngine::new(test_db.db.clone(), config),
            test_db,
        }
    }
}

suite!(
    on_every_database_and_store: signing_in_cycles_the_token_keeps_the_data_and_is_heard_once_stored,
    signing_in_as_someone_else_ends_their_session_and_inherits_nothing,
    every_way_a_session_ends_is_heard_with_its_reason,
);

fn client() -> ClientInfo {
    ClientInfo {
        ip: Some([198, 51, 100, 7].into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0".into()),
        ..ClientInfo::default()
    }
}

/// A request carrying `cookie` that does `what` to its session, committed as the layer would;
/// answers the new cookie's token, if one was set.
async fn request<F, Fut>(engine: &SessionEngine, cookie: Option<&str>, what: F) -> Option<String>
where
    F: FnOnce(Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let session = engine.session(cookie, client());
    what(session.clone()).await;
    match engine.commit(&session).await.unwrap().cookie {
        CookieAction::Set { token, .. } => Some(token.expose().to_owned()),
        _ => None,
    }
}

async fn next_event(events: &mut Receiver<SessionEvent>, what: &str) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: no event"))
        .unwrap()
}

async fn signing_in_cycles_the_token_keeps_the_data_and_is_heard_once_stored(ctx: Ctx) {
    let Ctx {
        name,
        engine,
        test_db,
    } = ctx;
    let alice = test_db.insert_user("alice", false).await.unwrap();
    let mut events = engine.subscribe();
    // A visitor's session holds something before signing in.
    let before = request(&engine, None, |s| async move {
        s.insert("cart", 3).await.unwrap();
    })
    .await
    .unwrap();
    let after = request(&engine, Some(&before), |s| async move {
        s.sign_in(alice, AuthMethod::Password).await.unwrap();
    })
    .await
    .expect("a new token");
    assert_ne!(after, before, "{name}: a new token at sign-in");
    let old = SessionToken::parse(&before).unwrap().hash();
    assert!(
        engine.store().load(&old, now()).await.unwrap().is_none(),
        "{name}"
    );
    let record = engine
        .store()
        .load(&SessionToken::parse(&after).unwrap().hash(), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.user_id, Some(alice), "{name}");
    assert_eq!(
        record.data["cart"], 3,
        "{name}: a visitor's own data is kept"
    );
    match next_event(&mut events, &name).await {
        SessionEvent::SignedIn(signed_in) => {
            assert_eq!(signed_in.user_id, alice, "{name}");
            assert_eq!(signed_in.public_id, record.public_id, "{name}");
            assert_eq!(signed_in.method, AuthMethod::Password, "{name}");
            assert_eq!(signed_in.client, client(), "{name}");
        }
        other => panic!("{name}: {other:?}"),
    }
    // Nothing else was heard: the first request stored a visitor's session, no sign-in.
    assert!(events.try_recv().is_err(), "{name}");
}

async fn signing_in_as_someone_else_ends_their_session_and_inherits_nothing(ctx: Ctx) {
    let Ctx {
        name,
        engine,
        test_db,
    } = ctx;
    let alice = test_db.insert_user("alice", false).await.unwrap();
    let bob = test_db.insert_user("bob", false).await.unwrap();
    let alices = request(&engine, None, |s| async move {
        s.sign_in(alice, AuthMethod::Password).await.unwrap();
        s.insert("theme", "dark").await.unwrap();
    })
    .await
    .unwrap();
    let alices_id = engine.list_for_user(alice).await.unwrap()[0]
        .public_id
        .clone();
    let mut events = engine.subscribe();
    let bobs = request(&engine, Some(&alices), |s| async move {
        s.sign_in(bob, AuthMethod::Password).await.unwrap();
    })
    .await
    .unwrap();
    assert!(
        engine.list_for_user(alice).await.unwrap().is_empty(),
        "{name}"
    );
    let record = engine
        .store()
        .load(&SessionToken::parse(&bobs).unwrap().hash(), now())
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.data.is_empty(),
        "{name}: nothing of alice's is inherited"
    );
    assert_eq!(
        next_event(&mut events, &name).await,
        SessionEvent::Ended(Ended {
            public_id: alices_id,
            user_id: Some(alice),
            reason: EndCause::SignedOut,
            by: None,
        }),
        "{name}"
    );
    assert!(
        matches!(next_event(&mut events, &name).await, SessionEvent::SignedIn(s) if s.user_id == bob),
        "{name}"
    );
}

async fn every_way_a_session_ends_is_heard_with_its_reason(ctx: Ctx) {
    let Ctx {
        name,
        engine,
        test_db,
    } = ctx;
    let alice = test_db.insert_user("alice", false).await.unwrap();
    let sign_in = || async {
        request(&engine, None, |s| async move {
            s.sign_in(alice, AuthMethod::Password).await.unwrap();
        })
        .await
        .unwrap()
    };
    let mut events = engine.subscribe();
    let heard = |events: &mut Receiver<SessionEvent>| {
        let mut ended = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let SessionEvent::Ended(e) = event {
                ended.push((e.user_id, e.reason));
            }
        }
        ended
    };
    // Signing out.
    let token = sign_in().await;
    request(&engine, Some(&token), |s| async move {
        s.sign_out().await.unwrap();
    })
    .await;
    assert_eq!(
        heard(&mut events),
        [(Some(alice), EndCause::SignedOut)],
        "{name}"
    );
    // Revoked by another session, then all of them.
    let keep = sign_in().await;
    sign_in().await;
    let keep_id = engine
        .store()
        .load(&SessionToken::parse(&keep).unwrap().hash(), now())
        .await
        .unwrap()
        .unwrap()
        .public_id;
    assert_eq!(engine.revoke_others(alice, &keep_id).await.unwrap(), 1);
    assert_eq!(
        heard(&mut events),
        [(Some(alice), EndCause::Revoked)],
        "{name}"
    );
    assert_eq!(engine.revoke_all(alice).await.unwrap(), 1);
    assert_eq!(
        heard(&mut events),
        [(Some(alice), EndCause::Revoked)],
        "{name}"
    );
    // The user deleted.
    sign_in().await;
    let accounts = console_sessions::accounts::Accounts::new(
        test_db.db.clone(),
        engine.clone(),
        Default::default(),
    );
    assert_eq!(accounts.delete_user(alice).await.unwrap(), 1);
    assert_eq!(
        heard(&mut events),
        [(Some(alice), EndCause::UserDeleted)],
        "{name}"
    );
    // Expired, then swept.
    let visitor = request(&engine, None, |s| async move {
        s.set_expiry(console_sessions::sessions::Expiry::IdleSeconds(1))
            .await
            .unwrap();
        s.insert("x", 1).await.unwrap();
    })
    .await;
    assert!(visitor.is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(engine.clear_expired(100).await.unwrap(), 1, "{name}");
    assert_eq!(
        heard(&mut events),
        [(None, EndCause::IdleTimeout)],
        "{name}"
    );
}
