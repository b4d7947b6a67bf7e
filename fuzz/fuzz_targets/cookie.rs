//! The `Cookie` headers of a request: finding the session cookie among them, and reading its value
//! as a session token. Any bytes a client can send; nothing may panic, and what is found must be
//! what the header says.

#![no_main]

use arbitrary::Arbitrary;
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use console_sessions::sessions::{cookie_value, SessionToken, TokenHash, TOKEN_LENGTH};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    name: String,
    headers: Vec<Vec<u8>>,
}

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for bytes in &input.headers {
        // What hyper would refuse never reaches us; the rest (obs-text, odd separators) does.
        if let Ok(value) = HeaderValue::from_bytes(bytes) {
            headers.append(COOKIE, value);
        }
    }
    let Some(value) = cookie_value(&headers, &input.name) else {
        return;
    };
    // The value is one pair's value: no separator, no surrounding blanks, and the pair is there.
    assert!(!value.contains(';'), "{value:?}");
    assert_eq!(value, value.trim_ascii(), "{value:?}");
    assert!(!input.name.contains(';') && !input.name.contains('='));
    let in_header = value.is_empty()
        || headers.get_all(COOKIE).iter().any(|header| {
            header
                .as_bytes()
                .windows(value.len())
                .any(|w| w == value.as_bytes())
        });
    assert!(in_header, "{value:?} is in no header");

    // A token is exactly 43 base64url characters; anything else is refused, nothing panics.
    match SessionToken::parse(value) {
        Some(token) => {
            assert_eq!(token.expose(), value);
            assert_eq!(value.len(), TOKEN_LENGTH);
            assert!(value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(SessionToken::hash_of(value), Some(token.hash()));
        }
        None => assert!(
            value.len() != TOKEN_LENGTH
                || value.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                // 43 characters carry 258 bits: the last one's spare bits must be zero.
                || !matches!(value.as_bytes()[TOKEN_LENGTH - 1], b'A' | b'E' | b'I' | b'M' | b'Q' | b'U' | b'Y' | b'c' | b'g' | b'k' | b'o' | b's' | b'w' | b'0' | b'4' | b'8'),
            "{value:?} has a token's shape but was refused"
        ),
    }
    let _: Option<TokenHash> = SessionToken::hash_of(value);
});
