//! What a session is made of: its secret token, the token's hash (all the database ever sees), the
//! public id pages use, and the stored record.

use std::fmt;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::assurance::Assurance;
use crate::device::ClientHints;
use crate::geo::Place;

/// The secret a browser holds in its cookie: 256 bits from the operating system's CSPRNG, written as
/// 43 characters of unpadded base64url.
///
/// It is never stored, logged or put in a URL: `Debug` prints `SessionToken(***)`, and stores only
/// ever see its [`TokenHash`].
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// Length of a token in its cookie form.
pub const TOKEN_LENGTH: usize = 43;

impl SessionToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a cookie value only if it has exactly the shape of a token; anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != TOKEN_LENGTH {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        (bytes.len() == 32).then(|| Self(value.to_owned()))
    }

    /// The [`TokenHash`] to look this cookie value up by, when it has a token's length, without
    /// keeping a copy of it: for lookups that need nothing else.
    ///
    /// The alphabet is not checked: only the very string of a stored token hashes to that token's
    /// hash, so a value of the right length that is not a real token matches no session whatever
    /// its characters, and [`SessionToken::parse`] still refuses it on any path that keeps it.
    pub fn hash_of(value: &str) -> Option<TokenHash> {
        (value.len() == TOKEN_LENGTH).then(|| TokenHash::of(value))
    }

    /// The value to put in the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token: what the database stores and looks up.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// The SHA-256 of a [`SessionToken`]. A leaked database row does not give anyone a usable cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The SHA-256 of a token's cookie form.
    fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Rebuilds a hash read from the database; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a debugger; the whole hash never needs printing.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// Whether `text` uses only the unpadded base64url alphabet (the shape of tokens and public ids).
pub fn is_base64url(text: &str) -> bool {
    text.bytes().all(|b| BASE64URL[usize::from(b)])
}

/// Which bytes are base64url characters: one load per byte of a token or CSRF cookie checked on
/// every request, rather than three comparisons.
const BASE64URL: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        byte += 1;
    }
    table
};

/// The name pages, APIs and the admin use for a session: 128 random bits as 22 characters of
/// base64url. Knowing it grants nothing; every operation on it is scoped to a user or to staff.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicId(String);

/// Length of a public id.
pub const PUBLIC_ID_LENGTH: usize = 22;

impl PublicId {
    /// A fresh random public id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only strings with the exact shape of a public id.
    pub fn parse(value: &str) -> Option<Self> {
        let valid = value.len() == PUBLIC_ID_LENGTH && is_base64url(value);
        valid.then(|| Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicId({})", self.0)
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PublicId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| "not a session public id".to_owned())
    }
}

impl From<PublicId> for String {
    fn from(id: PublicId) -> Self {
        id.0
    }
}

/// How a session's expiry was chosen (Django's `set_expiry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// The configured idle timeout, renewed by activity.
    #[default]
    Default,
    /// This many seconds of inactivity, renewed by activity.
    IdleSeconds(i64),
    /// A fixed moment, in Unix milliseconds.
    AtMillis(i64),
    /// The cookie lasts until the browser closes; the server ends the session after
    /// [`SessionConfig::browser_idle_timeout`](super::SessionConfig::browser_idle_timeout) unused.
    BrowserClose,
    /// Shorter lifetimes than the configured ones for this session alone (staff's, as ASVS level 2
    /// asks): it expires after `idle_seconds` unused, renewed by activity, and `absolute_seconds`
    /// after its creation whatever its activity (never later than the configured ones). With
    /// `browser`, its cookie also ends with the browser.
    Limited {
        /// Seconds unused before it expires.
        idle_seconds: i64,
        /// Seconds after its creation before it expires, however active.
        absolute_seconds: i64,
        /// The cookie ends with the browser ("keep me signed in" unticked).
        browser: bool,
    },
}

impl Expiry {
    /// Whether the cookie ends with the browser.
    pub fn ends_with_browser(self) -> bool {
        matches!(
            self,
            Self::BrowserClose | Self::Limited { browser: true, .. }
        )
    }
}

/// One stored session: the row of the `sessions` table.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The public name of the session.
    pub public_id: PublicId,
    /// The hash of the token the browser holds.
    pub token_hash: TokenHash,
    /// The signed-in user, if any.
    pub user_id: Option<i64>,
    /// The name its owner gave it ("Work laptop"), if any: written only by
    /// [`UserSessionStore::rename`](super::UserSessionStore::rename), never by a save.
    pub label: Option<String>,
    /// How the signed-in user proved themselves, and when last; `None` for a session with no
    /// user (or signed in before sessions recorded it).
    pub assurance: Option<Assurance>,
    /// The session's data: a JSON object.
    pub data: Map<String, Value>,
    /// The client address last seen.
    pub ip: Option<IpAddr>,
    /// The user agent last seen, cut to [`MAX_USER_AGENT_CHARS`].
    pub user_agent: Option<String>,
    /// The User-Agent Client Hints last sent, if any.
    pub client_hints: Option<ClientHints>,
    /// Where the address last seen is (GeoIP), written when the address changes.
    pub place: Place,
    /// The address the session was created from.
    pub first_ip: Option<IpAddr>,
    /// Where the session was created (GeoIP).
    pub first_place: Place,
    /// How the expiry is computed.
    pub expiry: Expiry,
    /// When the session was created.
    pub created_at: OffsetDateTime,
    /// The last write of the row (qsessions' `modified`).
    pub updated_at: OffsetDateTime,
    /// The last request that used the session, written at most once per activity interval.
    pub last_activity_at: OffsetDateTime,
    /// When the session stops being valid.
    pub expires_at: OffsetDateTime,
}

/// Longest name of a session, in characters.
pub const MAX_LABEL_CHARS: usize = 60;

/// Longest user agent kept, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// Cuts a user agent to [`MAX_USER_AGENT_CHARS`] characters, on a character boundary.
pub fn truncate_user_agent(user_agent: &str) -> String {
    match user_agent.char_indices().nth(MAX_USER_AGENT_CHARS) {
        Some((end, _)) => user_agent[..end].to_owned(),
        None => user_agent.to_owned(),
    }
}

impl SessionRecord {
    /// Whether the session is still valid at `now`.
    pub fn is_active_at(&self, now: OffsetDateTime) -> bool {
        self.is_active_at_unix_nanos(now.unix_timestamp_nanos())
    }

    /// [`is_active_at`](Self::is_active_at) a moment given as Unix nanoseconds, for a caller that
    /// reads the clock that way.
    pub fn is_active_at_unix_nanos(&self, now_unix_nanos: i128) -> bool {
        self.expires_at.unix_timestamp_nanos() > now_unix_nanos
    }
}

/// An address as 16 bytes, IPv4 mapped into IPv6, so that byte order is address order for both.
pub fn ip_key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_round_trip_through_parse() {
        let token = SessionToken::generate();
        assert_eq!(token.expose().len(), TOKEN_LENGTH);
        assert_eq!(SessionToken::parse(token.expose()), Some(token.clone()));
        assert_ne!(SessionToken::generate(), token);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &"!".repeat(43),
            &"a".repeat(10_000),
        ] {
            assert!(SessionToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn token_debug_never_shows_the_secret() {
        let token = SessionToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn user_agents_are_cut_on_a_character_boundary() {
        let long = "é".repeat(600);
        let cut = truncate_user_agent(&long);
        assert_eq!(cut.chars().count(), MAX_USER_AGENT_CHARS);
        assert_eq!(truncate_user_agent("short"), "short");
    }

    #[test]
    fn public_ids_are_validated() {
        let id = PublicId::generate();
        assert_eq!(PublicId::parse(id.as_str()), Some(id));
        assert!(PublicId::parse("../../etc/passwd").is_none());
        assert!(PublicId::parse("").is_none());
    }

    #[test]
    fn ipv4_keys_sort_inside_the_mapped_range() {
        let a = ip_key("10.0.0.1".parse().unwrap());
        let b = ip_key("10.0.0.2".parse().unwrap());
        assert!(a < b);
    }
}
