//! Usernames and email addresses: what is accepted, and how usernames are folded so that two names
//! differing only by case (or by Unicode compatibility form) are one account.

use unicode_normalization::UnicodeNormalization;

use super::error::AccountError;
use crate::refusal::AccountRefusal;

/// Most characters a username may have, counted as sent (before trimming).
pub const MAX_USERNAME_CHARS: usize = 150;
/// Most characters an email address may have.
pub const MAX_EMAIL_CHARS: usize = 254;

/// Whether `text` has more than `max` characters, answered without walking a huge string: a
/// character takes at most four bytes.
pub(crate) fn too_long(text: &str, max: usize) -> bool {
    text.len() > max.saturating_mul(4) || (text.len() > max && text.chars().count() > max)
}

/// NFKC, then Unicode lower case, then NFKC again (lower-casing can leave a string unnormalised).
pub(crate) fn fold(text: &str) -> String {
    let compatible: String = text.nfkc().collect();
    compatible.to_lowercase().nfkc().collect()
}

/// The key a username is unique by: the trimmed name, NFKC-normalised and in Unicode lower case. So
/// `"Åsa"`, `"åsa"` and `" ÅSA "` share one key, as do `"Ｂob"` (full-width) and `"bob"`; `"straße"`
/// and `"STRASSE"` do not (lower case, not case folding).
pub fn username_key(username: &str) -> String {
    fold(username.trim())
}

/// Characters that are invisible or reorder text: a username containing them could impersonate
/// another one on screen. Ranges, inclusive.
const INVISIBLE_FORMAT: [(char, char); 7] = [
    ('\u{00AD}', '\u{00AD}'), // soft hyphen
    ('\u{180E}', '\u{180E}'), // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'), // zero-width space/joiners, directional marks
    ('\u{2028}', '\u{202E}'), // line/paragraph separators, bidirectional embeddings
    ('\u{2060}', '\u{2064}'), // word joiner, invisible operators
    ('\u{2066}', '\u{2069}'), // bidirectional isolates
    ('\u{FEFF}', '\u{FEFF}'), // zero-width no-break space
];

/// Control characters ([`char::is_control`], Unicode's Cc), as ranges.
const CONTROL: [(char, char); 2] = [('\u{0000}', '\u{001F}'), ('\u{007F}', '\u{009F}')];

fn is_invisible_format(c: char) -> bool {
    INVISIBLE_FORMAT
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
}

/// White space that is not also refused: what `str::trim` may remove from a name that passes.
const SPACES: [(char, char); 7] = [
    (' ', ' '),
    ('\u{00A0}', '\u{00A0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200A}'),
    ('\u{202F}', '\u{202F}'),
    ('\u{205F}', '\u{205F}'),
    ('\u{3000}', '\u{3000}'),
];

/// [`validate_username`]'s rule on characters as an ECMA-262 regular expression, for a JSON Schema
/// `pattern` (the JSON API states it, so generated clients know): no control or invisible
/// formatting character anywhere, and at least one character that is not white space. Its length
/// limit is the schema's `maxLength`, [`MAX_USERNAME_CHARS`].
///
/// White space is listed rather than written `\s`, which ECMA-262, Python and Rust each read a
/// little differently; and the three parts cannot overlap, so matching takes linear time.
///
/// ```
/// let pattern = console_sessions::accounts::username_pattern();
/// assert!(pattern.starts_with("^[ \\u00a0"));
/// ```
pub fn username_pattern() -> String {
    let class = |ranges: &mut dyn Iterator<Item = &(char, char)>| -> String {
        ranges
            .map(|&(first, last)| {
                let escape = |c: char| format!("\\u{:04x}", u32::from(c));
                if first == last {
                    escape(first)
                } else {
                    format!("{}-{}", escape(first), escape(last))
                }
            })
            .collect()
    };
    let spaces = class(&mut SPACES.iter()).replacen("\\u0020", " ", 1);
    let refused = class(&mut CONTROL.iter().chain(&INVISIBLE_FORMAT));
    format!("^[{spaces}]*[^{spaces}{refused}][^{refused}]*$")
}

/// Checks a username and returns it trimmed: 1 to [`MAX_USERNAME_CHARS`] characters and no control
/// or invisible formatting character, both counted as sent, before trimming (as the JSON API's
/// schema counts them: [`username_pattern`]).
pub fn validate_username(username: &str) -> Result<&str, AccountError> {
    let trimmed = username.trim();
    if trimmed.is_empty() {
        return Err(AccountError::Refused(AccountRefusal::UsernameRequired));
    }
    if too_long(username, MAX_USERNAME_CHARS) {
        return Err(AccountError::Refused(AccountRefusal::UsernameTooLong {
            max: MAX_USERNAME_CHARS,
        }));
    }
    if username
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(AccountError::Refused(
            AccountRefusal::UsernameInvalidCharacters,
        ));
    }
    Ok(trimmed)
}

/// Checks an optional email address and returns it trimmed (`None` when absent or blank). A given
/// address must have exactly one `@` with text on both sides, no spaces or control characters, and
/// at most [`MAX_EMAIL_CHARS`] characters.
pub fn validate_email(email: Option<&str>) -> Result<Option<&str>, AccountError> {
    let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    if too_long(email, MAX_EMAIL_CHARS) {
        return Err(AccountError::Refused(AccountRefusal::EmailInvalid));
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AccountError::Refused(AccountRefusal::EmailInvalid));
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || is_invisible_format(c);
    if local.is_empty()
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || email.chars().any(bad_char)
    {
        return Err(AccountError::Refused(AccountRefusal::EmailInvalid));
    }
    Ok(Some(email))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn usernames_fold_by_case_and_compatibility_form() {
        assert_eq!(username_key("Åsa"), username_key("åsa"));
        assert_eq!(username_key("  ÅSA "), "åsa");
        // "Å" as A + combining ring folds like the precomposed letter.
        assert_eq!(username_key("A\u{30a}sa"), username_key("åsa"));
        assert_eq!(username_key("Ｂｏｂ"), "bob");
        assert_eq!(username_key("STRASSE"), "strasse");
        assert_eq!(username_key("Straße"), "straße");
        assert_eq!(username_key("ΣΊΣΥΦΟΣ"), username_key("σίσυφος"));
    }

    #[test]
    fn usernames_are_trimmed_and_bounded() {
        assert_eq!(validate_username("  alice ").unwrap(), "alice");
        assert!(matches!(
            validate_username("   "),
            Err(AccountError::Refused(AccountRefusal::UsernameRequired))
        ));
        assert!(validate_username(&"é".repeat(150)).is_ok());
        assert!(matches!(
            validate_username(&"é".repeat(151)),
            Err(AccountError::Refused(AccountRefusal::UsernameTooLong {
                max: 150
            }))
        ));
        assert!(matches!(
            validate_username("bad\u{7}name"),
            Err(AccountError::Refused(
                AccountRefusal::UsernameInvalidCharacters
            ))
        ));
        assert!(matches!(
            validate_username("ad\u{200B}min"),
            Err(AccountError::Refused(
                AccountRefusal::UsernameInvalidCharacters
            ))
        ));
        assert!(validate_username("Anna Lena Müller").is_ok());
        // Counted as sent, before trimming: the JSON API's schema cannot count otherwise.
        assert!(matches!(
            validate_username(&format!(" {}", "é".repeat(150))),
            Err(AccountError::Refused(AccountRefusal::UsernameTooLong {
                max: 150
            }))
        ));
    }

    #[test]
    fn emails_must_look_like_emails() {
        assert_eq!(validate_email(None).unwrap(), None);
        assert_eq!(validate_email(Some("  ")).unwrap(), None);
        assert_eq!(
            validate_email(Some(" a@example.test ")).unwrap(),
            Some("a@example.test")
        );
        for bad in [
            "no-at-sign",
            "two@@example.test",
            "a@b@example.test",
            "@example.test",
            "a@",
            "a b@example.test",
            "a@.example",
        ] {
            assert!(
                matches!(
                    validate_email(Some(bad)),
                    Err(AccountError::Refused(AccountRefusal::EmailInvalid))
                ),
                "{bad}"
            );
        }
        let long = format!("{}@example.test", "a".repeat(250));
        assert!(matches!(
            validate_email(Some(&long)),
            Err(AccountError::Refused(AccountRefusal::EmailInvalid))
        ));
    }

    #[test]
    fn length_checks_do_not_need_to_count_huge_strings() {
        assert!(too_long(&"a".repeat(1 << 20), 1024));
        assert!(!too_long(&"€".repeat(1024), 1024));
        assert!(too_long(&"€".repeat(1025), 1024));
    }

    /// The pattern, read by a regular-expression engine, accepts exactly what `validate_username`
    /// accepts (length aside, which the schema states apart), on every boundary character.
    #[test]
    fn the_username_pattern_accepts_what_validate_username_accepts() {
        let pattern = regex::Regex::new(&username_pattern()).unwrap();
        let mut probes: Vec<char> = [
            'a',
            'é',
            '字',
            '0',
            '-',
            '\u{1F600}',
            '\u{180D}',
            '\u{180F}',
        ]
        .into_iter()
        .collect();
        for &(first, last) in CONTROL.iter().chain(&INVISIBLE_FORMAT).chain(&SPACES) {
            for c in [first, last] {
                probes.push(c);
                probes.extend(char::from_u32(u32::from(c) + 1));
                probes.extend(u32::from(c).checked_sub(1).and_then(char::from_u32));
            }
        }
        for &c in &probes {
            for name in [
                format!("{c}"),
                format!("a{c}b"),
                format!("{c}bob"),
                format!("bob{c}"),
                format!("{c}{c}"),
                format!(" {c} "),
            ] {
                assert_eq!(
                    pattern.is_match(&name),
                    validate_username(&name).is_ok(),
                    "{name:?}"
                );
            }
        }
        assert!(!pattern.is_match("bob\n") && validate_username("bob\n").is_err());
    }
}
