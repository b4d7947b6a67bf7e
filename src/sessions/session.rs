//! [`Session`]: the per-request handle to one session, loaded lazily on first use and committed by the
//! layer when the response leaves.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::assurance::{Assurance, AuthMethod};
use super::client::ClientInfo;
use super::record::{Expiry, PublicId, SessionRecord, SessionToken};
use super::store::StoreError;
use super::SessionEngine;
use crate::clock::now;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store failed; the request should get a 503 and change nothing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be converted to or from JSON.
    #[error("session value {key:?} has an unexpected shape: {source}")]
    Value {
        /// The key.
        key: String,
        /// The conversion error.
        source: serde_json::Error,
    },
}

/// The per-request handle to the client's session.
///
/// Cheap to clone: clones share one state. Nothing is read from the store until a method needs it,
/// so requests that never touch the session (static files, health checks) cost nothing.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

struct Shared {
    engine: SessionEngine,
    /// The token from the request's cookie, if it had the shape of one.
    cookie_token: Option<SessionToken>,
    /// Whether the request carried our cookie at all (valid or not).
    cookie_present: bool,
    client: ClientInfo,
    state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) loaded: bool,
    /// The row as loaded or last written; `None` while the session exists only in memory.
    pub(crate) record: Option<SessionRecord>,
    pub(crate) data: Map<String, Value>,
    pub(crate) user_id: Option<i64>,
    /// The user the session had when this request loaded it.
    pub(crate) loaded_user_id: Option<i64>,
    /// How the session's user proved themselves, and when last.
    pub(crate) assurance: Option<Assurance>,
    pub(crate) expiry: Expiry,
    pub(crate) modified: bool,
    pub(crate) accessed: bool,
    /// Give the session a new token when committing.
    pub(crate) cycle: bool,
    /// A row `flush` asked to delete when committing.
    pub(crate) flushed: Option<SessionRecord>,
    /// The stored last activity is older than the activity interval.
    pub(crate) activity_due: bool,
    /// The client's address or user agent differ from the stored ones.
    pub(crate) client_changed: bool,
}

/// Ends the session in `state`: the row is deleted at commit, the client starts afresh.
fn flush_state(state: &mut State) {
    if let Some(record) = state.record.take() {
        state.flushed = Some(record);
    }
    state.data.clear();
    state.user_id = None;
    state.assurance = None;
    state.expiry = Expiry::Default;
    state.cycle = false;
    state.modified = true;
}

/// Whether the request's client differs from what the session row says (an address, user agent or
/// client hints the request has and the row does not): committing then rewrites the row. The
/// address is compared as it would be kept (`IP_RETENTION`): under `none` a row without one is
/// not out of date.
pub(crate) fn client_differs(
    engine: &SessionEngine,
    client: &ClientInfo,
    record: &SessionRecord,
) -> bool {
    let kept = engine.config().ip_retention.keep(client.ip);
    (kept.is_some() && kept != record.ip)
        || (client.user_agent.is_some() && client.user_agent != record.user_agent)
        || (!client.hints.is_empty() && record.client_hints.as_ref() != Some(&client.hints))
}

/// Whether the row's last activity is older than the activity interval: committing then touches it.
pub(crate) fn activity_due(
    engine: &SessionEngine,
    record: &SessionRecord,
    now: OffsetDateTime,
) -> bool {
    activity_due_at_unix_nanos(engine, record, now.unix_timestamp_nanos())
}

/// [`activity_due`] at a moment given as Unix nanoseconds: for the forward-authentication check,
/// which reads the clock that way (making an `OffsetDateTime` of it and subtracting two of them
/// costs several times as much).
pub(crate) fn activity_due_at_unix_nanos(
    engine: &SessionEngine,
    record: &SessionRecord,
    now_unix_nanos: i128,
) -> bool {
    // A whole `Duration` in nanoseconds is far below `i128::MAX`.
    let interval =
        i128::try_from(engine.config().activity_interval.as_nanos()).unwrap_or(i128::MAX);
    now_unix_nanos - record.last_activity_at.unix_timestamp_nanos() >= interval
}

impl Session {
    pub(crate) fn new(
        engine: SessionEngine,
        cookie_token: Option<SessionToken>,
        cookie_present: bool,
        client: ClientInfo,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                engine,
                cookie_token,
                cookie_present,
                client,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Who made the request: address, user agent, client hints, https.
    pub fn client(&self) -> &ClientInfo {
        &self.shared.client
    }

    pub(crate) fn cookie_token(&self) -> Option<SessionToken> {
        self.shared.cookie_token.clone()
    }

    pub(crate) fn cookie_present(&self) -> bool {
        self.shared.cookie_present
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, State> {
        self.shared.state.lock().await
    }

    /// Locks the state, loading it from the store first if this is the first use.
    async fn loaded(&self) -> Result<tokio::sync::MutexGuard<'_, State>, SessionError> {
        let mut state = self.shared.state.lock().await;
        if !state.loaded {
            self.load_into(&mut state).await?;
        }
        state.accessed = true;
        Ok(state)
    }

    async fn load_into(&self, state: &mut State) -> Result<(), SessionError> {
        let engine = &self.shared.engine;
        let now = now();
        let record = match &self.shared.cookie_token {
            None => None,
            Some(token) => match engine.store().load(&token.hash(), now).await {
                Ok(record) => record,
                Err(StoreError::Corrupt { public_id, reason }) => {
                    // Kept in the database for inspection; this client starts afresh.
                    tracing::warn!(%public_id, %reason, "unreadable session row ignored");
                    None
                }
                Err(error) => return Err(error.into()),
            },
        };
        if let Some(record) = record {
            state.client_changed = client_differs(engine, &self.shared.client, &record);
            state.activity_due = activity_due(engine, &record, now);
            state.data = record.data.clone();
            state.user_id = record.user_id;
            state.loaded_user_id = record.user_id;
            state.assurance = record.assurance;
            state.expiry = record.expiry;
            state.record = Some(record);
        }
        state.loaded = true;
        Ok(())
    }

    /// Makes sure the session is loaded, so errors surface now rather than when committing.
    pub async fn load(&self) -> Result<(), SessionError> {
        self.loaded().await.map(drop)
    }

    /// A typed value; `None` when the key is missing.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let state = self.loaded().await?;
        state
            .data
            .get(key)
            .map(|value| {
                serde_json::from_value(value.clone()).map_err(|source| SessionError::Value {
                    key: key.to_owned(),
                    source,
                })
            })
            .transpose()
    }

    /// The raw JSON value of a key.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        Ok(self.loaded().await?.data.get(key).cloned())
    }

    /// Stores a typed value under a key.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(|source| SessionError::Value {
            key: key.to_owned(),
            source,
        })?;
        let mut state = self.loaded().await?;
        state.data.insert(key.to_owned(), value);
        state.modified = true;
        Ok(())
    }

    /// Removes a key, returning its typed value. Marks the session modified only if the key was there.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut state = self.loaded().await?;
        let Some(value) = state.data.remove(key) else {
            return Ok(None);
        };
        state.modified = true;
        serde_json::from_value(value)
            .map(Some)
            .map_err(|source| SessionError::Value {
                key: key.to_owned(),
                source,
            })
    }

    /// Whether a key is present.
    pub async fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        Ok(self.loaded().await?.data.contains_key(key))
    }

    /// The keys present.
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        Ok(self.loaded().await?.data.keys().cloned().collect())
    }

    /// The signed-in user. Reading it does not modify the session.
    pub async fn user_id(&self) -> Result<Option<i64>, SessionError> {
        Ok(self.loaded().await?.user_id)
    }

    /// Links the session to a user (or to none). The session records the method as
    /// [`AuthMethod::Other`]; [`Session::sign_in`] says how the user proved themselves.
    pub async fn set_user_id(&self, user_id: Option<i64>) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        if state.user_id != user_id {
            state.user_id = user_id;
            state.assurance = user_id.map(|_| Assurance::signed_in(AuthMethod::Other, now()));
            state.modified = true;
        }
        Ok(())
    }

    /// Empties the data and unlinks the user; the row, if any, stays (deleted on commit if still empty).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        state.data.clear();
        state.user_id = None;
        state.assurance = None;
        state.modified = true;
        Ok(())
    }

    /// Ends the session: its row is deleted when the response leaves, and the client gets a fresh,
    /// empty session (stored only if something is put in it).
    pub async fn flush(&self) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        flush_state(&mut state);
        Ok(())
    }

    /// Signs the session in as `user_id` once a password (or another factor) was checked, `method`
    /// saying how: the session row keeps it with its assurance level and the time
    /// ([`Session::assurance`]), and the sign-in event carries it.
    ///
    /// The session gets a new token, so one planted before the sign-in is worthless; a session of
    /// another user in this client is ended and a fresh one started, so nothing of theirs is
    /// inherited. When the response leaves, subscribers hear [`SessionEvent::SignedIn`]
    /// (unless the account system refuses the user by then, and the session is undone).
    ///
    /// [`SessionEvent::SignedIn`]: super::SessionEvent::SignedIn
    pub async fn sign_in(&self, user_id: i64, method: AuthMethod) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        match state.user_id {
            Some(other) if other != user_id => flush_state(&mut state),
            _ => state.cycle = true,
        }
        state.user_id = Some(user_id);
        state.assurance = Some(Assurance::signed_in(method, now()));
        state.modified = true;
        Ok(())
    }

    /// How the signed-in user proved themselves in this session, and when last; `None` when no
    /// one is signed in.
    pub async fn assurance(&self) -> Result<Option<Assurance>, SessionError> {
        let state = self.loaded().await?;
        Ok(state.assurance.filter(|_| state.user_id.is_some()))
    }

    /// Records that the signed-in user proved themselves again just now, by `method` (their
    /// password or a factor), before a sensitive action ("confirm access", step-up): the
    /// session's time of authentication becomes now, its level rises to the method's if that is
    /// higher, and it gets a new token, as on every change of privilege (which also makes every
    /// node's cache drop the old state). The method it signed in with stays.
    ///
    /// Returns `false`, changing nothing, when no one is signed in.
    pub async fn confirm_access(&self, method: AuthMethod) -> Result<bool, SessionError> {
        let mut state = self.loaded().await?;
        if state.user_id.is_none() {
            return Ok(false);
        }
        let now = now();
        let assurance = match state.assurance {
            Some(mut assurance) => {
                assurance.level = assurance.level.max(method.level());
                assurance.authenticated_at = now;
                assurance
            }
            None => Assurance::signed_in(method, now),
        };
        state.assurance = Some(assurance);
        state.cycle = true;
        state.modified = true;
        Ok(true)
    }

    /// Whether the signed-in user proved themselves in this session within `window` (signing in
    /// or [`Session::confirm_access`]); `false` when no one is signed in.
    pub async fn confirmed_within(
        &self,
        window: std::time::Duration,
    ) -> Result<bool, SessionError> {
        Ok(self
            .assurance()
            .await?
            .is_some_and(|assurance| assurance.within(window, now())))
    }

    /// Signs out: the session ends ([`Session::flush`]) and subscribers hear
    /// [`SessionEvent::Ended`] with [`EndCause::SignedOut`] once it is deleted.
    ///
    /// [`SessionEvent::Ended`]: super::SessionEvent::Ended
    /// [`EndCause::SignedOut`]: super::EndCause::SignedOut
    pub async fn sign_out(&self) -> Result<(), SessionError> {
        self.flush().await
    }

    /// Gives the session a new token, keeping its data, user and row; the old token stops working when
    /// the response leaves. Call it on every change of privilege (sign-in) against fixation.
    pub async fn cycle_key(&self) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        state.cycle = true;
        state.modified = true;
        Ok(())
    }

    /// Sets how the session expires (Django's `set_expiry`).
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        state.expiry = expiry;
        state.modified = true;
        Ok(())
    }

    /// The expiry policy.
    pub async fn expiry(&self) -> Result<Expiry, SessionError> {
        Ok(self.loaded().await?.expiry)
    }

    /// When the session will expire if saved now.
    pub async fn expires_at(&self) -> Result<OffsetDateTime, SessionError> {
        let state = self.loaded().await?;
        let now = now();
        let created = state.record.as_ref().map_or(now, |r| r.created_at);
        Ok(self.shared.engine.expires_at(state.expiry, created, now))
    }

    /// Seconds until the session expires if saved now (Django's `get_expiry_age`).
    pub async fn expiry_age(&self) -> Result<i64, SessionError> {
        let expires_at = self.expires_at().await?;
        Ok((expires_at - now()).whole_seconds().max(0))
    }

    /// Whether the cookie ends with the browser.
    pub async fn expires_at_browser_close(&self) -> Result<bool, SessionError> {
        Ok(self.loaded().await?.expiry.ends_with_browser())
    }

    /// No data and no user.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        let state = self.loaded().await?;
        Ok(state.data.is_empty() && state.user_id.is_none())
    }

    /// The public id of the stored session, if it is stored.
    pub async fn public_id(&self) -> Result<Option<PublicId>, SessionError> {
        Ok(self
            .loaded()
            .await?
            .record
            .as_ref()
            .map(|r| r.public_id.clone()))
    }

    /// The stored record as loaded or last written.
    pub async fn record(&self) -> Result<Option<SessionRecord>, SessionError> {
        Ok(self.loaded().await?.record.clone())
    }

    /// Whether the request carried a session cookie that no live session matches: the session was
    /// signed out elsewhere, revoked, or expired. Pages use it to say "your session has ended" rather
    /// than treating the visitor as new.
    pub async fn cookie_ended(&self) -> Result<bool, SessionError> {
        let state = self.loaded().await?;
        Ok(self.shared.cookie_present && state.record.is_none() && state.flushed.is_none())
    }

    /// Whether this request signed someone in or out: the session's user differs from the one it
    /// was loaded with, or the session was given a new token. Never loads the session (`false`
    /// when the request did not use it). Asked after the handler, before the commit: what rides
    /// on the sign-in state (an anti-forgery token) is renewed with it.
    pub async fn user_changed(&self) -> bool {
        let state = self.shared.state.lock().await;
        state.loaded && (state.user_id != state.loaded_user_id || state.cycle)
    }

    /// Whether anything was changed in this request.
    pub async fn is_modified(&self) -> bool {
        self.shared.state.lock().await.modified
    }

    /// Whether the session was read or written in this request.
    pub async fn is_accessed(&self) -> bool {
        self.shared.state.lock().await.accessed
    }
}
