//! The secret the server keys its hashes of usernames with, kept in the database (`server_keys`) so
//! every node sharing it agrees.
//!
//! No setting is needed: the first node that needs the key generates 256 random bits from the
//! operating system and inserts them; an insert that loses a race to another node's changes nothing,
//! and everyone reads back the one row. Deleting the row only makes the next start forget the
//! throttling counts (they are keyed by it), nothing else.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::error::AccountError;
use crate::clock::{now, to_millis};
use crate::db::with_pool;
use crate::db::Database;

/// The name of the key of [`account_subject`] in `server_keys`.
const THROTTLE_KEY: &str = "throttle";

/// The throttling key: read from the database, made first if there is none yet.
pub(crate) async fn throttle_key(db: &Database) -> Result<[u8; 32], sqlx::Error> {
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let (secret,): (Vec<u8>,) = with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO server_keys (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(THROTTLE_KEY)
        .bind(fresh.as_slice())
        .bind(to_millis(now()))
        .execute(pool)
        .await?;
        sqlx::query_as("SELECT secret FROM server_keys WHERE name = $1")
            .bind(THROTTLE_KEY)
            .fetch_one(pool)
            .await
    })?;
    secret.try_into().map_err(|secret: Vec<u8>| {
        sqlx::Error::Decode(
            format!(
                "server_keys.{THROTTLE_KEY} has {} bytes, not 32",
                secret.len()
            )
            .into(),
        )
    })
}

/// What an account is counted by in `login_attempts`: the HMAC-SHA256 of its folded username under
/// `key`, in lower-case hex. Without the key nobody can tell which name a count is for.
pub(crate) fn account_subject(key: &[u8; 32], username_key: &str) -> Result<String, AccountError> {
    // HMAC takes a key of any length; the error exists only in the trait's signature.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|_| AccountError::internal("HMAC-SHA256 refused the throttling key"))?;
    mac.update(username_key.as_bytes());
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_subjects_are_keyed_hashes_that_do_not_contain_the_name() {
        let key = [7u8; 32];
        let subject = |key: &[u8; 32], name: &str| account_subject(key, name).unwrap_or_default();
        let subject_of = subject;
        let subject = subject_of(&key, "alice");
        assert_eq!(subject.len(), 64);
        assert!(subject.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!subject.contains("alice"));
        assert_eq!(subject, subject_of(&key, "alice"));
        assert_ne!(subject, subject_of(&key, "alicf"));
        assert_ne!(subject, subject_of(&[8u8; 32], "alice"));
    }
}
