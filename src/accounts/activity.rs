//! Sign-in activity: each successful sign-in of an account and each failed attempt on it (a wrong
//! password, a wrong second-step code), with when, from where and on what — what an account page
//! shows beside its recently ended sessions, so a person sees someone trying their password.
//!
//! Successes are recorded from the engine's [`SignedIn`](crate::sessions::SignedIn) events (by
//! [`Accounts::note_sign_in_event`]), failures where they are refused. Attempts on names that are
//! no account are not recorded: there is nobody to show them to.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::*;
use crate::device::ClientHints;
use crate::geo::Place;
use crate::sessions::retention::db::{age_columns, AddressColumn};
use crate::sessions::{parse_stored_ip, ClientInfo};

/// One sign-in, or one failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAttempt {
    /// When.
    pub at: OffsetDateTime,
    /// Whether it signed in.
    pub succeeded: bool,
    /// How: the session's method (`password`, `password_totp`, `passkey`, …) for a success, the
    /// step that failed (`password`, `second_factor`) for a failure.
    pub method: String,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The client hints it sent.
    pub client_hints: Option<ClientHints>,
    /// Where the address is (GeoIP).
    pub place: Place,
    /// The session a success signed in.
    pub session: Option<PublicId>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    at: i64,
    succeeded: bool,
    method: String,
    ip: Option<String>,
    user_agent: Option<String>,
    client_hints: Option<String>,
    country_code: Option<String>,
    city: Option<String>,
    session_public_id: Option<String>,
}

/// The step a failed attempt failed at.
pub const FAILED_PASSWORD: &str = "password";
/// A wrong code (or passkey) at the second step or when confirming access.
pub const FAILED_SECOND_FACTOR: &str = "second_factor";

impl Accounts {
    /// Records a sign-in or an attempt on `user_id` from `client`; its place comes from the
    /// engine's GeoIP database. A failure to record is logged, never the caller's failure: the
    /// sign-in itself went as it went.
    pub async fn record_sign_in_attempt(
        &self,
        user_id: i64,
        succeeded: bool,
        method: &str,
        client: &ClientInfo,
        session: Option<&PublicId>,
    ) {
        let place = client
            .ip
            .map(|ip| self.engine().place(ip))
            .unwrap_or_default();
        let hints = (!client.hints.is_empty())
            .then(|| serde_json::to_string(&client.hints).ok())
            .flatten();
        let written = with_pool!(self.db(), |pool| sqlx::query(
            "INSERT INTO sign_in_activity (user_id, at, succeeded, method, ip, user_agent, \
             client_hints, country_code, city, session_public_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(user_id)
        .bind(to_millis(now()))
        .bind(succeeded)
        .bind(method)
        .bind(self.kept_ip(client.ip).map(crate::sessions::ip_text))
        .bind(client.user_agent.as_deref())
        .bind(hints)
        .bind(place.country_code.as_deref())
        .bind(place.city.as_deref())
        .bind(session.map(PublicId::as_str))
        .execute(pool)
        .await
        .map(drop));
        if let Err(error) = written {
            tracing::warn!(%error, user_id, succeeded, "a sign-in attempt was not recorded");
        }
    }

    /// A user's sign-ins and failed attempts, newest first, at most `limit`.
    pub async fn sign_in_activity(
        &self,
        user_id: i64,
        limit: u32,
    ) -> Result<Vec<SignInAttempt>, AccountError> {
        let rows: Vec<AttemptRow> = with_pool!(self.db(), |pool| sqlx::query_as(
            "SELECT at, succeeded, method, ip, user_agent, client_hints, country_code, city, \
             session_public_id FROM sign_in_activity WHERE user_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2"
        )
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| SignInAttempt {
                at: crate::clock::from_millis(row.at),
                succeeded: row.succeeded,
                method: row.method,
                ip: row.ip.as_deref().and_then(parse_stored_ip),
                user_agent: row.user_agent,
                client_hints: row
                    .client_hints
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok()),
                place: Place {
                    country_code: row.country_code,
                    city: row.city,
                },
                session: row.session_public_id.as_deref().and_then(PublicId::parse),
            })
            .collect())
    }

    /// Forgets sign-in activity older than `before`; answers how many were forgotten.
    pub async fn forget_sign_in_activity(
        &self,
        before: OffsetDateTime,
    ) -> Result<u64, AccountError> {
        Ok(with_pool!(self.db(), |pool| sqlx::query(
            "DELETE FROM sign_in_activity WHERE at < $1"
        )
        .bind(to_millis(before))
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?)
    }

    /// Applies `IP_RETENTION` (the engine's
    /// [`SessionConfig::ip_retention`](crate::sessions::SessionConfig::ip_retention)) to the
    /// addresses this service keeps: those of sign-in activity and of security events, cut to
    /// their network or forgotten once old, `batch` rows per statement. Answers how many
    /// addresses changed; the engine's own sessions and history are
    /// [`SessionEngine::age_addresses`](crate::sessions::SessionEngine::age_addresses)'.
    pub async fn age_addresses(&self, batch: u32) -> Result<u64, AccountError> {
        let Some((aging, before)) = self.engine().config().ip_retention.aging(now()) else {
            return Ok(0);
        };
        let columns = [ACTIVITY_IP, SECURITY_EVENT_IP];
        Ok(age_columns(self.db(), &columns, aging, before, batch).await?)
    }
}

/// The account system's addresses, as the sweeper ages them (migration 0014's partial indexes).
const ACTIVITY_IP: AddressColumn = AddressColumn {
    table: "sign_in_activity",
    ip: "ip",
    seen: "at",
    key: None,
};
const SECURITY_EVENT_IP: AddressColumn = AddressColumn {
    table: "security_events",
    ip: "ip",
    seen: "at",
    key: None,
};
