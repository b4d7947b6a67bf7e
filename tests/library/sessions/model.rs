//! The engine against a model: random sequences of what requests and staff do to sessions (create,
//! load, save, cycle the key, sign out, revoke by the owner and by someone else, revoke all,
//! expire, sweep, evict from the cache, read from a cold node), checked after every step against a
//! map of which tokens are live and what they hold. On every store case: no ended session comes back, no cache serves what the
//! store no longer holds, and expiry falls exactly at `expires_at`.
//!
//! proptest makes the sequences and shrinks a failing one to a shortest form; the runner is driven
//! here by hand because each step awaits the store. `PROPTEST_CASES` sets how many sequences
//! (24 by default) and `PROPTEST_SEED` replays one run's sequences (the seed is printed on failure).

use std::collections::BTreeMap;
use std::time::Duration;

use console_sessions::sessions::{
    now, to_millis, CookieAction, Expiry, PublicId, SessionToken, TokenHash,
};
use console_sessions::SessionEngine;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::{client, Ctx, Kept, FIREFOX};

/// One step. Sessions are picked by [`Index`] among those the sequence has made so far (ended
/// ones included: using an ended token must find nothing).
#[derive(Debug, Clone)]
enum Op {
    /// A request with no cookie stores a value, signed in as one of three users or not.
    Create { user: Option<u8>, value: u8 },
    /// A request with the cookie reads the value and the user.
    Load(Index),
    /// A request with the cookie stores another value.
    Save(Index, u8),
    /// The key is cycled (as at sign-in): a new token, the old one dead.
    Cycle(Index),
    /// The session signs out (`flush`).
    SignOut(Index),
    /// The user signs the session out from another device, by its public id.
    Revoke(Index),
    /// Another user tries the same: "not found", and the session lives on.
    RevokeAsAnother(Index, u8),
    /// Every session of one of the users is signed out.
    RevokeAll(u8),
    /// The session is given an expiry in the past.
    Expire(Index),
    /// The sweeper deletes expired sessions.
    ClearExpired,
    /// The session leaves the cache (memory pressure, another node's eviction).
    Evict(Index),
    /// The whole cache is emptied.
    EvictAll,
    /// Another node, cold cache, reads the session.
    ColdLoad(Index),
    /// At `expires_at` minus 1 ms the store has the session; at `expires_at` it has not.
    ExpiryIsExact(Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (proptest::option::of(0u8..3), any::<u8>())
            .prop_map(|(user, value)| Op::Create { user, value }),
        3 => any::<Index>().prop_map(Op::Load),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, value)| Op::Save(i, value)),
        1 => any::<Index>().prop_map(Op::Cycle),
        1 => any::<Index>().prop_map(Op::SignOut),
        1 => any::<Index>().prop_map(Op::Revoke),
        1 => (any::<Index>(), 0u8..3).prop_map(|(i, other)| Op::RevokeAsAnother(i, other)),
        1 => (0u8..3).prop_map(Op::RevokeAll),
        1 => any::<Index>().prop_map(Op::Expire),
        1 => Just(Op::ClearExpired),
        1 => any::<Index>().prop_map(Op::Evict),
        1 => Just(Op::EvictAll),
        2 => any::<Index>().prop_map(Op::ColdLoad),
        1 => any::<Index>().prop_map(Op::ExpiryIsExact),
    ]
}

/// A sequence always starts by making a session, so that indexes have something to pick.
fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (
        (proptest::option::of(0u8..3), any::<u8>()),
        proptest::collection::vec(op(), 0..24),
    )
        .prop_map(|((user, value), mut rest)| {
            rest.insert(0, Op::Create { user, value });
            rest
        })
}

/// What the model knows of one token.
#[derive(Debug)]
struct Entry {
    token: SessionToken,
    public_id: PublicId,
    user: Option<i64>,
    value: u8,
    live: bool,
    /// Expired but not yet swept: dead to requests, still a row that a revoke deletes (and counts).
    expired_row: bool,
}

struct Model<'c> {
    ctx: &'c Ctx,
    entries: Vec<Entry>,
    /// This sequence's three users, made on first use (fresh for every sequence, so that "revoke
    /// all" counts only this sequence's sessions).
    users: BTreeMap<u8, i64>,
    run: u64,
}

type Step = Result<(), String>;

fn check(ok: bool, what: impl FnOnce() -> String) -> Step {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

impl<'c> Model<'c> {
    async fn user(&mut self, which: u8) -> i64 {
        if let Some(&id) = self.users.get(&which) {
            return id;
        }
        let id = self
            .ctx
            .user(&format!("model-{}-{}-{which}", self.run, rand_suffix()))
            .await;
        self.users.insert(which, id);
        id
    }

    fn pick(&self, index: &Index) -> usize {
        index.index(self.entries.len())
    }

    fn engine(&self) -> &SessionEngine {
        &self.ctx.engine
    }

    /// A request carrying `token`: what it finds (value, user) and what the response does with the
    /// cookie, after `act` ran on the session.
    async fn request<F, Fut>(
        &self,
        token: &SessionToken,
        act: F,
    ) -> (Option<u8>, Option<i64>, CookieAction)
    where
        F: FnOnce(console_sessions::Session) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let session = self.ctx.request(Some(token.expose()));
        let value = session.get::<u8>("v").await.expect("the store answers");
        let user = session.user_id().await.expect("the store answers");
        act(session.clone()).await;
        let cookie = self.ctx.finish(&session).await;
        (value, user, cookie)
    }

    /// Whether what a request found for entry `i` is what the model says.
    fn agrees(&self, i: usize, found: (Option<u8>, Option<i64>), on: &str) -> Step {
        let entry = &self.entries[i];
        let expected = if entry.live {
            (Some(entry.value), entry.user)
        } else {
            (None, None)
        };
        check(found == expected, || {
            format!(
                "{on}: session {i} ({}) read {found:?}, the model says {expected:?}",
                if entry.live { "live" } else { "ended" }
            )
        })
    }

    /// The public id of the session a token just made.
    async fn public_id_of(&self, token: &SessionToken) -> Result<PublicId, String> {
        self.ctx
            .request(Some(token.expose()))
            .public_id()
            .await
            .expect("the store answers")
            .ok_or_else(|| "a session just made has no public id".to_owned())
    }

    async fn create(&mut self, user: Option<u8>, value: u8) -> Step {
        let user = match user {
            Some(which) => Some(self.user(which).await),
            None => None,
        };
        let session = self.ctx.request(None);
        session.insert("v", value).await.expect("insert");
        session.set_user_id(user).await.expect("set user");
        let token = match self.ctx.finish(&session).await {
            CookieAction::Set { token, .. } => token,
            other => return Err(format!("a new session answered {other:?}, not a cookie")),
        };
        let public_id = self.public_id_of(&token).await?;
        self.entries.push(Entry {
            token,
            public_id,
            user,
            value,
            live: true,
            expired_row: false,
        });
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Step {
        match op {
            Op::Create { user, value } => self.create(*user, *value).await?,
            Op::Load(i) => {
                let i = self.pick(i);
                let (value, user, _) = self.request(&self.entries[i].token, |_| async {}).await;
                self.agrees(i, (value, user), "load")?;
            }
            Op::Save(i, new) => {
                let i = self.pick(i);
                let token = self.entries[i].token.clone();
                let new = *new;
                let (value, user, cookie) = self
                    .request(&token, |s| async move {
                        s.insert("v", new).await.expect("insert")
                    })
                    .await;
                self.agrees(i, (value, user), "save")?;
                if self.entries[i].live {
                    self.entries[i].value = new;
                    if let CookieAction::Set { token: sent, .. } = &cookie {
                        check(sent.expose() == token.expose(), || {
                            format!("saving session {i} changed its token")
                        })?;
                    }
                } else {
                    // An ended session's cookie starts a new, anonymous session: never the old one.
                    let CookieAction::Set { token: fresh, .. } = cookie else {
                        return Err(format!("saving into ended session {i} answered {cookie:?}"));
                    };
                    check(fresh.expose() != token.expose(), || {
                        format!("ended session {i}'s token came back")
                    })?;
                    let public_id = self.public_id_of(&fresh).await?;
                    self.entries.push(Entry {
                        token: fresh,
                        public_id,
                        user: None,
                        value: new,
                        live: true,
                        expired_row: false,
                    });
                }
            }
            Op::Cycle(i) => {
                let i = self.pick(i);
                if !self.entries[i].live {
                    return Ok(());
                }
                let token = self.entries[i].token.clone();
                let (value, user, cookie) = self
                    .request(
                        &token,
                        |s| async move { s.cycle_key().await.expect("cycle") },
                    )
                    .await;
                self.agrees(i, (value, user), "cycle")?;
                let CookieAction::Set { token: fresh, .. } = cookie else {
                    return Err(format!("cycling session {i} answered {cookie:?}"));
                };
                check(fresh.expose() != token.expose(), || {
                    format!("cycling session {i} kept its token")
                })?;
                // The old token is dead from now on; the new one holds the same session.
                let entry = &mut self.entries[i];
                let old = std::mem::replace(&mut entry.token, fresh);
                let dead = Entry {
                    token: old,
                    public_id: entry.public_id.clone(),
                    user: entry.user,
                    value: entry.value,
                    live: false,
                    expired_row: false,
                };
                self.entries.push(dead);
            }
            Op::SignOut(i) => {
                let i = self.pick(i);
                let token = self.entries[i].token.clone();
                let (value, user, _) = self
                    .request(&token, |s| async move { s.flush().await.expect("flush") })
                    .await;
                self.agrees(i, (value, user), "sign out")?;
                self.entries[i].live = false;
            }
            Op::Revoke(i) => {
                let i = self.pick(i);
                let Some(user) = self.entries[i].user else {
                    return Ok(());
                };
                let revoked = self
                    .engine()
                    .revoke(user, &self.entries[i].public_id)
                    .await
                    .expect("revoke");
                // The row is there while live, and after expiring until the sweep. A cycled
                // session's old tokens share its public id.
                let public_id = self.entries[i].public_id.clone();
                let was_there = self
                    .entries
                    .iter()
                    .any(|e| e.public_id == public_id && (e.live || e.expired_row));
                for entry in &mut self.entries {
                    if entry.public_id == public_id {
                        entry.live = false;
                        entry.expired_row = false;
                    }
                }
                check(revoked == was_there, || {
                    format!("revoking session {i} (stored: {was_there}) answered {revoked}")
                })?;
            }
            Op::RevokeAsAnother(i, which) => {
                let i = self.pick(i);
                let other = self.user(*which).await;
                if self.entries[i].user == Some(other) {
                    return Ok(());
                }
                let revoked = self
                    .engine()
                    .revoke(other, &self.entries[i].public_id)
                    .await
                    .expect("revoke");
                check(!revoked, || {
                    format!("user {which} revoked session {i}, which is not theirs")
                })?;
            }
            Op::RevokeAll(which) => {
                let user = self.user(*which).await;
                let ended = self.engine().revoke_all(user).await.expect("revoke all");
                let mut live = std::collections::BTreeSet::new();
                for entry in &mut self.entries {
                    if entry.user == Some(user) {
                        if entry.live || entry.expired_row {
                            live.insert(entry.public_id.clone());
                        }
                        entry.live = false;
                        entry.expired_row = false;
                    }
                }
                check(ended == live.len(), || {
                    format!(
                        "revoking all of user {which} ended {ended}, the model had {} stored",
                        live.len()
                    )
                })?;
            }
            Op::Expire(i) => {
                let i = self.pick(i);
                let token = self.entries[i].token.clone();
                let past = to_millis(now()) - 1_000;
                let (value, user, _) = self
                    .request(&token, |s| async move {
                        s.set_expiry(Expiry::AtMillis(past))
                            .await
                            .expect("set expiry")
                    })
                    .await;
                self.agrees(i, (value, user), "expire")?;
                if !self.entries[i].live {
                    // The request made a new session only to expire it: nothing to follow.
                    return Ok(());
                }
                self.entries[i].live = false;
                self.entries[i].expired_row = true;
            }
            Op::ClearExpired => {
                self.engine()
                    .clear_expired(1_000)
                    .await
                    .expect("clear expired");
                for entry in &mut self.entries {
                    entry.expired_row = false;
                }
            }
            Op::Evict(i) => {
                let i = self.pick(i);
                let hash = self.entries[i].token.hash();
                self.evict(Some(&hash));
            }
            Op::EvictAll => self.evict(None),
            Op::ColdLoad(i) => self.cold_load(self.pick(i)).await?,
            Op::ExpiryIsExact(i) => {
                let i = self.pick(i);
                let hash = self.entries[i].token.hash();
                let store = self.engine().store();
                let Some(record) = store.load(&hash, now()).await.expect("load") else {
                    return check(!self.entries[i].live, || {
                        format!("live session {i} is not in the store")
                    });
                };
                check(self.entries[i].live, || {
                    format!("ended session {i} is in the store")
                })?;
                let just_before = record.expires_at - time::Duration::milliseconds(1);
                check(
                    store
                        .load(&hash, just_before)
                        .await
                        .expect("load")
                        .is_some(),
                    || format!("session {i} is gone 1 ms before it expires"),
                )?;
                check(
                    store
                        .load(&hash, record.expires_at)
                        .await
                        .expect("load")
                        .is_none(),
                    || format!("session {i} is still there at its expiry"),
                )?;
            }
        }
        Ok(())
    }

    /// Evicts one session from the case's cache, or all of them (nothing without a cache).
    fn evict(&self, hash: Option<&TokenHash>) {
        match (&self.ctx.kept, self.ctx.engine.cache()) {
            (
                Kept::Memory {
                    cache: Some(cache), ..
                },
                _,
            ) => match hash {
                Some(hash) => cache.evict(hash),
                None => cache.evict_all(),
            },
            (_, Some(cache)) => match hash {
                Some(hash) => cache.evict(hash),
                None => cache.evict_all(),
            },
            _ => {}
        }
    }

    /// Another node, cold cache, reads entry `i`.
    async fn cold_load(&self, i: usize) -> Step {
        let cold = self.ctx.cold_engine();
        let session = cold.session(
            Some(self.entries[i].token.expose()),
            client("203.0.113.5", FIREFOX),
        );
        let value = session.get::<u8>("v").await.expect("the store answers");
        let user = session.user_id().await.expect("the store answers");
        self.agrees(i, (value, user), "cold load")
    }

    /// After the sequence: every token reads as the model says on this node and on a cold one,
    /// and each user's list of sessions is exactly their live ones.
    async fn settle(&mut self) -> Step {
        for i in 0..self.entries.len() {
            let (value, user, _) = self.request(&self.entries[i].token, |_| async {}).await;
            self.agrees(i, (value, user), "at the end")?;
            self.cold_load(i).await?;
        }
        for (&which, &user) in &self.users {
            let mut listed: Vec<String> = self
                .engine()
                .list_for_user(user)
                .await
                .expect("list")
                .into_iter()
                .map(|r| r.public_id.as_str().to_owned())
                .collect();
            listed.sort();
            let mut live: Vec<String> = self
                .entries
                .iter()
                .filter(|e| e.live && e.user == Some(user))
                .map(|e| e.public_id.as_str().to_owned())
                .collect();
            live.sort();
            live.dedup();
            check(listed == live, || {
                format!("user {which} lists {listed:?}, the model has {live:?} live")
            })?;
        }
        Ok(())
    }
}

/// A short random suffix, so that user names stay unique across the cases of one database.
fn rand_suffix() -> String {
    SessionToken::generate().expose()[..8].to_owned()
}

async fn run(ctx: &Ctx, ops: &[Op], run: u64) -> Step {
    let mut model = Model {
        ctx,
        entries: Vec::new(),
        users: BTreeMap::new(),
        run,
    };
    for (n, op) in ops.iter().enumerate() {
        model
            .step(op)
            .await
            .map_err(|e| format!("step {n} ({op:?}): {e}"))?;
    }
    model.settle().await
}

async fn random_sequences_of_requests_and_staff_actions_agree_with_a_simple_model(ctx: Ctx) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24u32);
    let seed: [u8; 32] = match std::env::var("PROPTEST_SEED") {
        Ok(hex) => {
            assert!(
                hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "PROPTEST_SEED is 64 hex digits"
            );
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("PROPTEST_SEED is hex"))
                .collect();
            bytes.try_into().expect("PROPTEST_SEED is 32 bytes of hex")
        }
        Err(_) => rand::random(),
    };
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    // Printed first: a step that panics (a store error) skips the report below. The harness shows
    // a test's output only when it fails.
    println!("PROPTEST_SEED={seed_hex}");
    let mut runner = TestRunner::new_with_rng(
        Config::with_cases(cases),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
    );
    let mut runs = 0u64;
    for _ in 0..cases {
        let mut tree = sequence().new_tree(&mut runner).expect("a sequence");
        runs += 1;
        let Err(error) = run(&ctx, &tree.current(), runs).await else {
            continue;
        };
        // Shrink: simpler sequences while they still fail; the last failure is the one to show.
        let mut failure = (tree.current(), error);
        let mut tries = 0;
        'simpler: while tries < 512 && tree.simplify() {
            loop {
                tries += 1;
                runs += 1;
                match run(&ctx, &tree.current(), runs).await {
                    Err(error) => {
                        failure = (tree.current(), error);
                        continue 'simpler;
                    }
                    Ok(()) if tries < 512 && tree.complicate() => {}
                    Ok(()) => continue 'simpler,
                }
            }
        }
        panic!(
            "the engine and the model disagree (PROPTEST_SEED={seed_hex}):\n{}\nshortest sequence found: {:#?}",
            failure.1, failure.0
        );
    }
    // Let the sweeper's and the events' tasks finish before the database goes.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

suite!(on_every_store: random_sequences_of_requests_and_staff_actions_agree_with_a_simple_model);
