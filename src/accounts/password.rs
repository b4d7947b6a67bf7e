//! Password hashes: argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1), computed off the
//! async runtime in `tokio::task::spawn_blocking`.
//!
//! Passwords are normalised to NFKC before hashing and verifying (as NIST SP 800-63B recommends), so
//! the same password typed on two keyboards that compose accents differently still matches.
//! Passwords and hashes are never logged.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;

use super::error::AccountError;
use super::validate::{fold, too_long};
use crate::refusal::AccountRefusal;

/// Argon2 memory cost in KiB: 19 MiB, OWASP's recommendation for argon2id.
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2 passes over the memory (OWASP: 2 with 19 MiB).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2 lanes (OWASP: 1).
pub const ARGON2_P_COST: u32 = 1;

/// Fewest characters a new password may have, unless [`super::AccountsConfig`] asks for more.
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 8;
/// Most characters a password may have. Longer input is refused before any hashing, so a megabyte
/// of text costs nothing but a length check.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The argon2 parameters every new hash uses. Checked at compile time.
pub const PARAMS: Params = match Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
{
    Ok(params) => params,
    Err(_) => panic!("invalid argon2 parameters"),
};

/// The hash an unknown username is verified against, so that signing in as nobody costs as much as
/// signing in as somebody (no user enumeration by timing). Same algorithm and parameters as
/// [`PARAMS`]; its password is a random string nobody knows.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$h9qYSCOkHHUqbEf/OnL/rQ$\
                                     lz8u1xHdpqf05DRrnScxbO2iew4N2NzUol5XSxgOtK8";

/// The argon2id hasher with [`PARAMS`].
pub fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

fn normalise(password: &str) -> String {
    password.nfkc().collect()
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`); a password longer than
/// [`MAX_PASSWORD_CHARS`] is refused unhashed. Blocking: call [`hash_password`] from async code.
pub fn hash_password_blocking(password: &str) -> Result<String, AccountError> {
    if too_long(password, MAX_PASSWORD_CHARS) {
        return Err(AccountError::Refused(AccountRefusal::PasswordTooLong {
            max: MAX_PASSWORD_CHARS,
        }));
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(normalise(password).as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A hash that does not parse (an unusable
/// password such as `!`) matches nothing, yet still costs one verification against the dummy hash,
/// so it cannot be told apart by timing. A password longer than [`MAX_PASSWORD_CHARS`] matches
/// nothing and is not hashed. Blocking: call [`verify_password`] from async code.
pub fn verify_password_blocking(password: &str, hash: &str) -> bool {
    if too_long(password, MAX_PASSWORD_CHARS) {
        return false;
    }
    let password = normalise(password);
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            if let Ok(dummy) = PasswordHash::new(DUMMY_HASH) {
                let _ = hasher().verify_password(password.as_bytes(), &dummy);
            }
            false
        }
    }
}

/// Whether a stored hash should be replaced by one with the current algorithm and parameters (checked
/// after a successful sign-in, when the password is at hand).
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(params) => {
            params.m_cost() != PARAMS.m_cost()
                || params.t_cost() != PARAMS.t_cost()
                || params.p_cost() != PARAMS.p_cost()
        }
        Err(_) => true,
    }
}

/// Hashes a password on the blocking thread pool.
pub async fn hash_password(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password_blocking(&password))
        .await
        .map_err(|e| AccountError::internal(format!("password hashing task failed: {e}")))?
}

/// Verifies a password on the blocking thread pool.
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, AccountError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password_blocking(&password, &hash))
        .await
        .map_err(|e| AccountError::internal(format!("password verification task failed: {e}")))
}

/// Checks a new password: at least `min_chars` characters, at most [`MAX_PASSWORD_CHARS`], and not
/// the username (ignoring case).
pub fn validate_new_password(
    username: &str,
    password: &str,
    min_chars: usize,
) -> Result<(), AccountError> {
    if password.is_empty() {
        return Err(AccountError::Refused(AccountRefusal::PasswordRequired));
    }
    if too_long(password, MAX_PASSWORD_CHARS) {
        return Err(AccountError::Refused(AccountRefusal::PasswordTooLong {
            max: MAX_PASSWORD_CHARS,
        }));
    }
    let min = min_chars.clamp(1, MAX_PASSWORD_CHARS);
    if password.chars().count() < min {
        return Err(AccountError::Refused(AccountRefusal::PasswordTooShort {
            min,
        }));
    }
    if fold(password.trim()) == fold(username.trim()) {
        return Err(AccountError::Refused(
            AccountRefusal::PasswordEqualsUsername,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn argon2_parameters_are_owasp_argon2id() {
        assert_eq!(PARAMS.m_cost(), 19456);
        assert_eq!(PARAMS.t_cost(), 2);
        assert_eq!(PARAMS.p_cost(), 1);
        let hash = hash_password_blocking("correct horse battery staple").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let parsed = PasswordHash::new(&hash).unwrap();
        assert_eq!(parsed.algorithm, argon2::ARGON2ID_IDENT);
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19456, 2, 1)
        );
        assert!(!needs_rehash(&hash));
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password_blocking("correct horse battery staple").unwrap();
        assert!(verify_password_blocking(
            "correct horse battery staple",
            &hash
        ));
        assert!(!verify_password_blocking(
            "correct horse battery stapl",
            &hash
        ));
        // The same password hashed twice gets two salts.
        assert_ne!(
            hash,
            hash_password_blocking("correct horse battery staple").unwrap()
        );
    }

    #[test]
    fn composed_and_decomposed_accents_are_the_same_password() {
        let hash = hash_password_blocking("caf\u{e9} au lait").unwrap();
        assert!(verify_password_blocking("cafe\u{301} au lait", &hash));
    }

    #[test]
    fn the_dummy_hash_has_the_real_parameters_and_unusable_hashes_match_nothing() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm, argon2::ARGON2ID_IDENT);
        assert!(!needs_rehash(DUMMY_HASH));
        assert!(!verify_password_blocking("", "!"));
        assert!(!verify_password_blocking("!", "!"));
    }

    #[test]
    fn huge_passwords_are_never_hashed() {
        let huge = "x".repeat(1 << 20);
        assert!(matches!(
            hash_password_blocking(&huge),
            Err(AccountError::Refused(AccountRefusal::PasswordTooLong {
                max: 1024
            }))
        ));
        assert!(!verify_password_blocking(&huge, DUMMY_HASH));
    }

    #[test]
    fn weaker_hashes_are_upgraded() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"password", &SaltString::generate(&mut rand::rngs::OsRng))
        .unwrap()
        .to_string();
        assert!(needs_rehash(&weak));
    }

    #[test]
    fn new_passwords_are_checked_for_length_and_the_username() {
        assert!(matches!(
            validate_new_password("alice", "", 8),
            Err(AccountError::Refused(AccountRefusal::PasswordRequired))
        ));
        assert!(matches!(
            validate_new_password("alice", "short", 8),
            Err(AccountError::Refused(AccountRefusal::PasswordTooShort {
                min: 8
            }))
        ));
        assert!(matches!(
            validate_new_password("alice", &"x".repeat(1025), 8),
            Err(AccountError::Refused(AccountRefusal::PasswordTooLong {
                max: 1024
            }))
        ));
        assert!(validate_new_password("alice", &"x".repeat(1024), 8).is_ok());
        assert!(matches!(
            validate_new_password("Alice.Example", "alice.example", 8),
            Err(AccountError::Refused(
                AccountRefusal::PasswordEqualsUsername
            ))
        ));
        // Characters, not bytes: eight two-byte letters are enough.
        assert!(validate_new_password("alice", "åäöåäöåä", 8).is_ok());
    }
}
