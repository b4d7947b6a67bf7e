//! Passkeys (WebAuthn, by webauthn-rs): register several and name them, use one as the second
//! step of a sign-in or to confirm access, or sign in with one alone (a discoverable credential:
//! the authenticator names the account).
//!
//! - Each ceremony is two requests. The first gives the browser its options (JSON for
//!   `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`) and
//!   keeps the server's half, the challenge among it, in the session ([`CEREMONY_KEY`]); the
//!   second takes that half out, so a challenge is answered once, and only within
//!   [`CEREMONY_LIFETIME`].
//! - Passkeys are bound to the relying party id, the host name of
//!   [`AccountsConfig::passkey_origin`]; without one (or with an IP address, which browsers refuse)
//!   passkeys are off: [`AccountRefusal::PasskeysUnavailable`].
//! - User verification (PIN, fingerprint) is required, so a passkey alone is two factors: a
//!   passwordless sign-in is [`AuthMethod::Passkey`], `aal2`.
//! - A failed answer counts toward the client address's lock (and, for a known user, the
//!   second-factor lock), as a wrong password does.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::alerts::{record_event, NewEvent};
use super::factors::fresh_recovery_codes_in;
use super::*;
use crate::sessions::{AuthMethod, Session};

/// How long a ceremony's server half waits in the session for the browser's answer (the browser
/// is told the same: WebAuthn's recommended five minutes).
pub const CEREMONY_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The longest name of a passkey, in characters.
pub const PASSKEY_NAME_MAX_CHARS: usize = 64;

/// How many passkeys one account may have.
pub const MAX_PASSKEYS_PER_USER: i64 = 20;

/// The session key a ceremony waits under.
pub const CEREMONY_KEY: &str = "_passkey_ceremony";

/// A passkey as its owner sees it in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyInfo {
    /// Its id in this service (for renaming and removing).
    pub id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// When it was last used to sign in or confirm access.
    pub last_used_at: Option<OffsetDateTime>,
}

/// The server's half of a ceremony, kept in the session between its two requests. Never sent to
/// the browser: it holds the challenge the answer must sign.
#[derive(Serialize, Deserialize)]
struct Ceremony {
    /// When it began (Unix ms).
    started_at: i64,
    kind: CeremonyKind,
}

#[derive(Serialize, Deserialize)]
enum CeremonyKind {
    /// Adding a passkey to `user_id`.
    Register {
        user_id: i64,
        state: PasskeyRegistration,
    },
    /// `user_id` proving themselves with one of their passkeys.
    Check {
        user_id: i64,
        state: PasskeyAuthentication,
    },
    /// Someone signing in with whichever passkey their authenticator offers.
    SignIn { state: DiscoverableAuthentication },
}

impl Ceremony {
    async fn begin(session: &Session, kind: CeremonyKind) -> Result<(), AccountError> {
        let ceremony = Ceremony {
            started_at: to_millis(now()),
            kind,
        };
        session.insert(CEREMONY_KEY, ceremony).await?;
        Ok(())
    }

    /// Takes the waiting ceremony out of the session (so it is answered once), if it is fresh.
    async fn take(session: &Session) -> Result<Option<CeremonyKind>, AccountError> {
        // A ceremony that no longer reads (an older version's) is as good as none.
        let taken = session
            .remove::<Ceremony>(CEREMONY_KEY)
            .await
            .unwrap_or(None);
        let now = to_millis(now());
        Ok(taken
            .filter(|c| c.started_at <= now && now - c.started_at <= millis(CEREMONY_LIFETIME))
            .map(|c| c.kind))
    }
}

/// The relying party for `origin` (`https://id.example.com`, or `http://localhost:3000` for
/// trying it out), named `name` in the browser's prompts; `None`, with a log line, when browsers
/// would refuse it (an IP address, no host).
pub(super) fn relying_party(origin: &str, name: &str) -> Option<Webauthn> {
    let url = match Url::parse(origin) {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(origin, "passkeys are off: the origin does not parse: {e}");
            return None;
        }
    };
    let Some(url::Host::Domain(host)) = url.host() else {
        tracing::warn!(
            origin,
            "passkeys are off: browsers allow them only on a host name, not an IP address"
        );
        return None;
    };
    let rp_id = host.to_owned();
    match WebauthnBuilder::new(&rp_id, &url)
        .and_then(|builder| builder.rp_name(name).timeout(CEREMONY_LIFETIME).build())
    {
        Ok(webauthn) => Some(webauthn),
        Err(e) => {
            tracing::warn!(origin, "passkeys are off: {e}");
            None
        }
    }
}

/// A passkey's name as kept: trimmed, control characters dropped, "Passkey" when empty.
fn passkey_name(typed: &str) -> Result<String, AccountError> {
    let name: String = typed.trim().chars().filter(|c| !c.is_control()).collect();
    if name.chars().count() > PASSKEY_NAME_MAX_CHARS {
        return Err(AccountRefusal::PasskeyNameTooLong {
            max: PASSKEY_NAME_MAX_CHARS,
        }
        .into());
    }
    Ok(if name.is_empty() {
        "Passkey".to_owned()
    } else {
        name
    })
}

fn to_json<T: Serialize>(options: &T) -> Result<String, AccountError> {
    serde_json::to_string(options).map_err(|e| AccountError::internal(format!("passkey JSON: {e}")))
}

/// A passkey record read back; one that no longer reads is skipped (and logged), not fatal.
fn read_passkey(id: i64, json: &str) -> Option<Passkey> {
    serde_json::from_str(json)
        .inspect_err(|e| tracing::error!(passkey = id, "stored passkey unreadable: {e}"))
        .ok()
}

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: i64,
    user_id: i64,
    credential: String,
}

impl Accounts {
    fn webauthn(&self) -> Result<&Webauthn, AccountError> {
        self.inner
            .webauthn
            .as_deref()
            .ok_or(AccountError::Refused(AccountRefusal::PasskeysUnavailable))
    }

    /// Whether passkeys can be used here ([`AccountsConfig::passkey_origin`] names a host).
    pub fn passkeys_available(&self) -> bool {
        self.inner.webauthn.is_some()
    }

    /// A user's passkeys, oldest first.
    pub async fn passkeys(&self, user_id: i64) -> Result<Vec<PasskeyInfo>, AccountError> {
        let rows: Vec<(i64, String, i64, Option<i64>)> = with_pool!(self.db(), |pool| {
            sqlx::query_as(
                "SELECT id, name, created_at, last_used_at FROM passkeys WHERE user_id = $1 \
                 ORDER BY id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at, last_used_at)| PasskeyInfo {
                id,
                name,
                created_at: from_millis(created_at),
                last_used_at: last_used_at.map(from_millis),
            })
            .collect())
    }

    async fn passkey_rows(&self, user_id: i64) -> Result<Vec<PasskeyRow>, AccountError> {
        Ok(with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT id, user_id, credential FROM passkeys WHERE user_id = $1 ORDER BY id"
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
    }

    /// The user's WebAuthn handle, made on first use.
    async fn webauthn_handle(&self, user_id: i64) -> Result<Uuid, AccountError> {
        let mut fresh = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
        let (handle,): (Vec<u8>,) = with_pool!(self.db(), |pool| {
            sqlx::query(
                "INSERT INTO webauthn_users (user_id, handle) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(fresh.as_slice())
            .execute(pool)
            .await?;
            sqlx::query_as("SELECT handle FROM webauthn_users WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(pool)
                .await
        })?;
        Uuid::from_slice(&handle).map_err(|e| AccountError::internal(format!("handle: {e}")))
    }

    /// Begins adding a passkey for a user: the options for the browser's
    /// `navigator.credentials.create` as JSON (a `CreationChallengeResponse`), the rest kept in
    /// `session`. The passkey is asked to be discoverable (kept on the authenticator with the
    /// account's handle), so that it can sign in without a username.
    pub async fn start_passkey_registration(
        &self,
        session: &Session,
        user_id: i64,
    ) -> Result<String, AccountError> {
        let webauthn = self.webauthn()?;
        let user = self
            .user(user_id)
            .await?
            .ok_or(AccountError::UserNotFound)?;
        let rows = self.passkey_rows(user_id).await?;
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= MAX_PASSKEYS_PER_USER {
            return Err(AccountRefusal::TooManyPasskeys {
                max: usize::try_from(MAX_PASSKEYS_PER_USER).unwrap_or(usize::MAX),
            }
            .into());
        }
        let handle = self.webauthn_handle(user_id).await?;
        let existing: Vec<_> = rows
            .iter()
            .filter_map(|row| read_passkey(row.id, &row.credential))
            .map(|passkey| passkey.cred_id().clone())
            .collect();
        let (options, state): (CreationChallengeResponse, _) = webauthn
            .start_passkey_registration(handle, &user.username, &user.username, Some(existing))
            .map_err(|e| AccountError::internal(format!("passkey registration: {e}")))?;
        let mut options = serde_json::to_value(&options)
            .map_err(|e| AccountError::internal(format!("passkey JSON: {e}")))?;
        // webauthn-rs leaves residency to the authenticator; a passwordless sign-in needs it.
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        Ceremony::begin(session, CeremonyKind::Register { user_id, state }).await?;
        to_json(&options)
    }

    /// Finishes adding a passkey: `credential` is the browser's answer as JSON
    /// (`PublicKeyCredential.toJSON()`), `name` what the user called it (see [`PasskeyInfo`]).
    /// The first second factor of a user also makes their recovery codes, returned to show once.
    pub async fn finish_passkey_registration(
        &self,
        session: &Session,
        user_id: i64,
        name: &str,
        credential: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<RecoveryCodes>, AccountError> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name)?;
        let Some(CeremonyKind::Register {
            user_id: owner,
            state,
        }) = Ceremony::take(session).await?
        else {
            return Err(AccountRefusal::PasskeyFailed.into());
        };
        if owner != user_id {
            return Err(AccountRefusal::PasskeyFailed.into());
        }
        let answer: RegisterPublicKeyCredential = serde_json::from_str(credential)
            .map_err(|_| AccountError::Refused(AccountRefusal::PasskeyFailed))?;
        let passkey = webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| {
                tracing::info!(user_id, "passkey registration refused: {e}");
                AccountError::Refused(AccountRefusal::PasskeyFailed)
            })?;
        let json = to_json(&passkey)?;
        let at = to_millis(now());
        let codes = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if count >= MAX_PASSKEYS_PER_USER {
                return Err(AccountRefusal::TooManyPasskeys {
                    max: usize::try_from(MAX_PASSKEYS_PER_USER).unwrap_or(usize::MAX),
                }
                .into());
            }
            let inserted = sqlx::query(
                "INSERT INTO passkeys (user_id, credential_id, name, credential, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(passkey.cred_id().as_slice())
            .bind(&name)
            .bind(&json)
            .bind(at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(AccountRefusal::PasskeyFailed.into())
                }
                other => other?,
            };
            let codes = fresh_recovery_codes_in!(tx, user_id, at);
            record_event!(
                &mut *tx,
                &NewEvent::of(user_id, SecurityEventKind::PasskeyAdded)
                    .with_ip(self.kept_ip(client_ip)),
                at
            )?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(codes)
        })?;
        tracing::info!(user_id, "passkey added");
        Ok(codes)
    }

    /// Renames one of a user's passkeys; `false` when they have none of that id.
    pub async fn rename_passkey(
        &self,
        user_id: i64,
        passkey_id: i64,
        name: &str,
    ) -> Result<bool, AccountError> {
        let name = passkey_name(name)?;
        let renamed = with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3"
        )
        .bind(&name)
        .bind(passkey_id)
        .bind(user_id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
        Ok(renamed == 1)
    }

    /// Removes one of a user's passkeys; `None` when they have none of that id. Their recovery
    /// codes go too when no second factor is left.
    pub async fn remove_passkey(
        &self,
        user_id: i64,
        passkey_id: i64,
        client_ip: Option<IpAddr>,
    ) -> Result<Option<FactorRemoved>, AccountError> {
        let at = to_millis(now());
        let removed = with_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            super::factors::lock_factors_of!(tx, user_id);
            let removed = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(passkey_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let removed = super::factors::factor_removed!(
                tx,
                user_id,
                removed,
                SecurityEventKind::PasskeyRemoved,
                self.kept_ip(client_ip),
                at
            );
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        })?;
        if removed.is_some() {
            tracing::info!(user_id, "passkey removed");
        }
        Ok(removed)
    }

    /// Begins a check of one of the user's passkeys (the second step of a sign-in, or confirming
    /// access): the options for `navigator.credentials.get` as JSON, naming their passkeys.
    /// [`AccountRefusal::PasskeyFailed`] when they have none.
    pub async fn start_passkey_check(
        &self,
        session: &Session,
        user_id: i64,
    ) -> Result<String, AccountError> {
        let webauthn = self.webauthn()?;
        let passkeys: Vec<Passkey> = self
            .passkey_rows(user_id)
            .await?
            .iter()
            .filter_map(|row| read_passkey(row.id, &row.credential))
            .collect();
        if passkeys.is_empty() {
            return Err(AccountRefusal::PasskeyFailed.into());
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| AccountError::internal(format!("passkey check: {e}")))?;
        Ceremony::begin(session, CeremonyKind::Check { user_id, state }).await?;
        to_json(&options)
    }

    /// Finishes a check begun by [`Accounts::start_passkey_check`] with the browser's answer
    /// (JSON); the answer is [`AuthMethod::PasswordPasskey`]. Throttled as a code of a second
    /// factor ([`Accounts::verify_second_factor`]).
    pub async fn finish_passkey_check(
        &self,
        session: &Session,
        user_id: i64,
        credential: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<AuthMethod, AccountError> {
        let webauthn = self.webauthn()?;
        let subjects = self.factor_subjects(user_id, client_ip);
        self.refuse_if_locked(&subjects).await?;
        let ceremony = Ceremony::take(session).await?;
        // Counted before it is looked at, as a code is: answers sent together cannot outrun the lock.
        self.take_attempt(&subjects).await?;
        let state = match ceremony {
            Some(CeremonyKind::Check {
                user_id: owner,
                state,
            }) if owner == user_id => state,
            _ => return Err(AccountRefusal::PasskeyFailed.into()),
        };
        let answer: Option<PublicKeyCredential> = serde_json::from_str(credential).ok();
        let row = match &answer {
            Some(answer) => {
                self.passkey_row_by_credential(answer.get_credential_id())
                    .await?
            }
            None => None,
        };
        let checked = match (answer, row) {
            (Some(answer), Some(row)) if row.user_id == user_id => webauthn
                .finish_passkey_authentication(&answer, &state)
                .map(|result| (row, result))
                .map_err(|e| tracing::info!(user_id, "passkey refused: {e}")),
            _ => Err(()),
        };
        let Ok((row, result)) = checked else {
            // The user's count took this attempt already; the address's counts failures.
            self.record_failure(super::factors::address_subjects(&subjects))
                .await?;
            return Err(AccountRefusal::PasskeyFailed.into());
        };
        self.note_passkey_use(row, &result).await?;
        self.clear_failures(&subjects).await?;
        Ok(AuthMethod::PasswordPasskey)
    }

    /// Begins a passwordless sign-in: the options for `navigator.credentials.get` as JSON, naming
    /// no account (the authenticator offers the passkeys it keeps for this site).
    pub async fn start_passkey_sign_in(&self, session: &Session) -> Result<String, AccountError> {
        let webauthn = self.webauthn()?;
        let (mut options, state): (RequestChallengeResponse, _) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| AccountError::internal(format!("passkey sign-in: {e}")))?;
        // webauthn-rs asks for the autofill ("conditional") prompt; a button asks at once.
        options.mediation = None;
        Ceremony::begin(session, CeremonyKind::SignIn { state }).await?;
        to_json(&options)
    }

    /// Finishes a passwordless sign-in with the browser's answer (JSON): the user whose passkey
    /// signed it, when active (and verified, under [`AccountsConfig::require_verified_email`]).
    /// Their last sign-in time is recorded; signing the session in ([`AuthMethod::Passkey`]) is
    /// the caller's. Failures count toward the client address's lock.
    pub async fn finish_passkey_sign_in(
        &self,
        session: &Session,
        credential: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<User, AccountError> {
        let webauthn = self.webauthn()?;
        let subjects: Vec<(Kind, String)> = client_ip
            .map(|ip| (Kind::Ip, ip_subject(ip)))
            .into_iter()
            .collect();
        self.refuse_if_locked(&subjects).await?;
        let Some(CeremonyKind::SignIn { state }) = Ceremony::take(session).await? else {
            return Err(AccountRefusal::PasskeyFailed.into());
        };
        let answer: Option<PublicKeyCredential> = serde_json::from_str(credential).ok();
        let mut found = None;
        if let Some(answer) = &answer {
            if let Ok((handle, credential_id)) =
                webauthn.identify_discoverable_authentication(answer)
            {
                found = self
                    .passkey_row_by_credential(credential_id)
                    .await?
                    .map(|row| (handle, row));
            }
        }
        let mut checked = Err(());
        if let (Some(answer), Some((handle, row))) = (answer, found) {
            if self.webauthn_handle_of(row.user_id).await? == Some(handle) {
                if let Some(passkey) = read_passkey(row.id, &row.credential) {
                    checked = webauthn
                        .finish_discoverable_authentication_v2(&answer, state, &passkey)
                        .map(|result| (row, result))
                        .map_err(|e| tracing::info!("passkey sign-in refused: {e}"));
                }
            }
        }
        // A deactivated (or deleted) account's passkey fails as an unknown one does.
        let mut signed = None;
        if let Ok((row, result)) = checked {
            if let Some(user) = self.user(row.user_id).await?.filter(|user| user.is_active) {
                signed = Some((row, result, user));
            }
        }
        let Some((row, result, user)) = signed else {
            self.record_failure(&subjects).await?;
            crate::metrics::sign_in(SignInOutcome::Failure);
            return Err(AccountRefusal::PasskeyFailed.into());
        };
        if self.inner.config.require_verified_email && user.email_verified_at.is_none() {
            return Err(if user.email.is_none() {
                AccountRefusal::EmailRequired.into()
            } else {
                AccountRefusal::EmailNotVerified.into()
            });
        }
        let user_id = user.id;
        self.note_passkey_use(row, &result).await?;
        let signed_in_at = now();
        with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE users SET last_login_at = $1 WHERE id = $2"
        )
        .bind(to_millis(signed_in_at))
        .bind(user_id)
        .execute(pool)
        .await
        .map(drop))?;
        crate::metrics::sign_in(SignInOutcome::Success);
        tracing::info!(user_id, "signed in with a passkey");
        Ok(User {
            last_login_at: Some(signed_in_at),
            ..user
        })
    }

    async fn passkey_row_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRow>, AccountError> {
        Ok(with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT id, user_id, credential FROM passkeys WHERE credential_id = $1"
        )
        .bind(credential_id)
        .fetch_optional(pool)
        .await)?)
    }

    async fn webauthn_handle_of(&self, user_id: i64) -> Result<Option<Uuid>, AccountError> {
        let row: Option<(Vec<u8>,)> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT handle FROM webauthn_users WHERE user_id = $1"
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(|(handle,)| Uuid::from_slice(&handle).ok()))
    }

    /// Records a passkey's use: when, and its new signature counter (webauthn-rs refused the
    /// answer already if the counter went backwards, the sign of a cloned authenticator).
    async fn note_passkey_use(
        &self,
        row: PasskeyRow,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<(), AccountError> {
        let mut credential = row.credential;
        if let Some(mut passkey) = read_passkey(row.id, &credential) {
            if passkey.update_credential(result) == Some(true) {
                credential = to_json(&passkey)?;
            }
        }
        with_pool!(self.db(), |pool| sqlx::query(
            "UPDATE passkeys SET last_used_at = $1, credential = $2 WHERE id = $3"
        )
        .bind(to_millis(now()))
        .bind(&credential)
        .bind(row.id)
        .execute(pool)
        .await
        .map(drop))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_defaulted_and_bounded() {
        assert_eq!(passkey_name("  Laptop \n").ok().as_deref(), Some("Laptop"));
        assert_eq!(passkey_name("").ok().as_deref(), Some("Passkey"));
        assert!(matches!(
            passkey_name(&"x".repeat(65)),
            Err(AccountError::Refused(AccountRefusal::PasskeyNameTooLong {
                max: 64
            }))
        ));
    }

    #[test]
    fn a_relying_party_needs_a_host_name() {
        assert!(relying_party("http://localhost:3000", "x").is_some());
        assert!(relying_party("https://id.example.com", "x").is_some());
        assert!(relying_party("http://127.0.0.1:3000", "x").is_none());
        assert!(relying_party("not a url", "x").is_none());
    }
}
