//! Where mail goes (`MAIL_URL`, read into [`MailTransport`]), who it is from (`MAIL_FROM`), and
//! how the outbox retries ([`RetryPolicy`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::Mailbox;

use super::MailError;
use crate::db::redact;

/// The port of SMTP submission with STARTTLS (RFC 6409).
pub const SUBMISSION_PORT: u16 = 587;
/// The port of SMTP submission inside TLS (RFC 8314).
pub const SUBMISSIONS_PORT: u16 = 465;

/// Every setting of the mail outbox and its worker, with the defaults of [`MailConfig::new`].
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// Where messages go (`MAIL_URL`).
    pub transport: MailTransport,
    /// Who they are from (`MAIL_FROM`): the `From` header and the envelope sender.
    pub from: MailAddress,
    /// When failed deliveries are tried again, and when the outbox gives up.
    pub retry: RetryPolicy,
    /// How often the worker looks for due messages when nothing wakes it (default 30 s). A message
    /// enqueued through the same [`Outbox`](super::Outbox) wakes it at once; one enqueued on another
    /// node, or a retry falling due, is seen at the latest after this long.
    pub poll_interval: Duration,
    /// The longest one delivery may take, connecting included (default 60 s); a delivery that takes
    /// longer counts as failed.
    pub send_timeout: Duration,
    /// How long a worker holds a message it is sending before others may take it (default 5 min):
    /// only a worker that died mid-send lets its lease run out, and the message is then due again.
    /// The worker uses at least `send_timeout` plus 30 s, so a slow send never loses its lease.
    pub lease: Duration,
}

impl MailConfig {
    /// The settings for a `MAIL_URL` and a `MAIL_FROM`, with the default schedule
    /// ([`RetryPolicy::default`]).
    pub fn new(mail_url: &str, mail_from: &str) -> Result<Self, MailError> {
        Ok(Self {
            transport: mail_url.parse()?,
            from: MailAddress::parse("MAIL_FROM", mail_from)?,
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(300),
        })
    }

    /// The lease the worker takes: [`MailConfig::lease`], and never less than the send timeout
    /// plus 30 s.
    pub(crate) fn effective_lease(&self) -> Duration {
        self.lease
            .max(self.send_timeout.saturating_add(Duration::from_secs(30)))
    }
}

/// When a message whose delivery failed is tried again.
///
/// The default: the first retry 30 s after the first failure, each wait twice the one before, at
/// most an hour (30 s, 1 min, 2, 4, 8, 16, 32 min, then hourly); after 10 attempts — about three
/// hours after the first — the message is `failed`. A message not sent within 24 hours of being
/// queued is `failed` without further attempts (a reset link or a sign-in alert that late is
/// worse than none); staff can queue it again ([`Outbox::retry`](super::Outbox::retry)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt (default 30 s).
    pub first_delay: Duration,
    /// The longest wait between attempts (default 1 h).
    pub max_delay: Duration,
    /// Attempts before giving up (default 10; at least 1).
    pub max_attempts: u32,
    /// How long after being queued a message may still be sent (default 24 h).
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            max_attempts: 10,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts` failed ones (`attempts` ≥ 1):
    /// `first_delay × 2^(attempts − 1)`, at most `max_delay`.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

/// An email address with an optional display name (`Console <no-reply@example.com>`), checked.
#[derive(Clone, PartialEq, Eq)]
pub struct MailAddress(pub(crate) Mailbox);

impl MailAddress {
    /// Reads an address; `what` names it in the error (`"MAIL_FROM"`, `"the recipient"`).
    pub fn parse(what: &'static str, text: &str) -> Result<Self, MailError> {
        Mailbox::from_str(text.trim())
            .map(Self)
            .map_err(|e| MailError::InvalidAddress {
                what,
                reason: e.to_string(),
            })
    }

    /// The address alone, without the display name (`no-reply@example.com`).
    pub fn email(&self) -> String {
        self.0.email.to_string()
    }

    /// The domain of the address (`example.com`).
    pub fn domain(&self) -> &str {
        self.0.email.domain()
    }
}

impl fmt::Display for MailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for MailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailAddress({})", self.0)
    }
}

/// Where messages go: an SMTP server, or a folder of `.eml` files. Read from `MAIL_URL` with
/// [`str::parse`]:
///
/// | URL | what |
/// |---|---|
/// | `smtp://user:pass@host[:port]` | SMTP with STARTTLS required (default port 587): a server that does not offer it is not sent to |
/// | `smtps://user:pass@host[:port]` | SMTP inside TLS from the first byte (default port 465) |
/// | `smtp://host:port?tls=none` | plain SMTP, for a test server on this machine: the port must be given, and no user or password (they would cross the network in clear) |
/// | `file://data/mail`, `file:///var/mail` | no SMTP: each message is written as an `.eml` file in that folder (relative to the working directory, or absolute) |
///
/// The user and password are optional (both or neither) and percent-decoded, so a password with
/// `@` or `:` is written `%40`, `%3A`. `smtp://…?tls=starttls` says the default out loud. Anything
/// else is refused rather than guessed at: another scheme, another `tls` value, other parameters,
/// a path, implicit TLS on the STARTTLS port (`smtps://…:587`) or STARTTLS on the implicit TLS
/// port (`smtp://…:465`). TLS is rustls with Mozilla's root certificates built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// An SMTP server.
    Smtp(SmtpServer),
    /// A folder each message is written to as `<queued time>-<id>.eml` (created when missing).
    Files(PathBuf),
}

/// An SMTP server and how to speak to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Its host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// Who to sign in as, if the server asks.
    pub credentials: Option<SmtpCredentials>,
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the server must offer (`smtp://`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
    /// No TLS at all (`smtp://…?tls=none`): for a test server on this machine. The outbox refuses
    /// credentials over it.
    None,
}

/// A user name and a password for the SMTP server. The password is shown nowhere: not by
/// `Debug`, not in errors, not in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl SmtpCredentials {
    /// A user name and its password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// `text` with the password, and the forms AUTH PLAIN and AUTH LOGIN send it in, replaced by
    /// `***`: for a server's answer that might repeat what it was sent.
    pub(crate) fn scrub(&self, text: &str) -> String {
        use base64::Engine;
        if self.password.is_empty() {
            return text.to_owned();
        }
        let engine = &base64::engine::general_purpose::STANDARD;
        let plain = engine.encode(format!("\0{}\0{}", self.username, self.password));
        let login = engine.encode(&self.password);
        let mut scrubbed = text.to_owned();
        for secret in [plain.as_str(), login.as_str(), self.password.as_str()] {
            scrubbed = scrubbed.replace(secret, "***");
        }
        scrubbed
    }
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The URL again, the password as `***` (fit for logs), and how the connection is protected.
impl fmt::Display for MailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailTransport::Files(folder) => write!(f, "file://{}", folder.display()),
            MailTransport::Smtp(server) => {
                let scheme = match server.security {
                    SmtpSecurity::Tls => "smtps",
                    SmtpSecurity::StartTls | SmtpSecurity::None => "smtp",
                };
                write!(f, "{scheme}://")?;
                if let Some(credentials) = &server.credentials {
                    write!(f, "{}:***@", credentials.username)?;
                }
                write!(f, "{}:{}", server.host, server.port)?;
                f.write_str(match server.security {
                    SmtpSecurity::StartTls => " (STARTTLS)",
                    SmtpSecurity::Tls => " (TLS)",
                    SmtpSecurity::None => "?tls=none (no TLS)",
                })
            }
        }
    }
}

const FORMS: &str = "use smtp://user:pass@host:587 (STARTTLS), smtps://user:pass@host:465 (TLS), \
                     smtp://127.0.0.1:port?tls=none (a local test server) or file://folder";

impl FromStr for MailTransport {
    type Err = MailError;

    /// Reads a `MAIL_URL` (see [`MailTransport`] for its forms).
    fn from_str(url: &str) -> Result<Self, MailError> {
        let url = url.trim();
        let invalid = |reason: String| MailError::InvalidUrl(reason);
        if url.is_empty() {
            return Err(invalid(format!("it is empty; {FORMS}")));
        }
        // Not shown: without a scheme it cannot be told where a password would be.
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(format!("it has no scheme (…://); {FORMS}")));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => files_from(rest),
            "smtp" | "smtps" => smtp_from(url).map(MailTransport::Smtp),
            other => Err(invalid(format!("unsupported scheme {other:?}; {FORMS}"))),
        }
    }
}

fn files_from(folder: &str) -> Result<MailTransport, MailError> {
    if folder.is_empty() {
        return Err(MailError::InvalidUrl(
            "file:// names no folder; use file://data/mail (relative) or file:///var/mail (absolute)"
                .to_owned(),
        ));
    }
    if folder.contains(['?', '#']) {
        return Err(MailError::InvalidUrl(format!(
            "file://{folder} has a query or fragment; a file:// URL is a folder and nothing else"
        )));
    }
    Ok(MailTransport::Files(PathBuf::from(folder)))
}

fn smtp_from(text: &str) -> Result<SmtpServer, MailError> {
    let invalid = |reason: String| MailError::InvalidUrl(reason);
    let shown = redact(text);
    let url = url::Url::parse(text).map_err(|e| invalid(format!("{shown} cannot be read: {e}")))?;
    let implicit_tls = url.scheme() == "smtps";
    let host = match url.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(url::Host::Ipv4(address)) => address.to_string(),
        Some(url::Host::Ipv6(address)) => address.to_string(),
        _ => return Err(invalid(format!("{shown} names no host; {FORMS}"))),
    };
    if !matches!(url.path(), "" | "/") {
        return Err(invalid(format!(
            "{shown} has a path; an SMTP URL is a server and nothing else"
        )));
    }
    if url.fragment().is_some() {
        return Err(invalid(format!("{shown} has a fragment (#…)")));
    }
    let mut tls = None;
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "tls" if tls.is_some() => {
                return Err(invalid(format!("{shown} gives tls more than once")));
            }
            "tls" => tls = Some(value.into_owned()),
            other => {
                return Err(invalid(format!(
                    "{shown} has the parameter {other:?}; the only one is tls=none (or tls=starttls) on smtp://"
                )));
            }
        }
    }
    let security = match (implicit_tls, tls.as_deref()) {
        (true, None) => SmtpSecurity::Tls,
        (true, Some(_)) => {
            return Err(invalid(format!(
                "{shown}: smtps:// is always TLS and takes no tls parameter"
            )));
        }
        (false, None | Some("starttls")) => SmtpSecurity::StartTls,
        (false, Some("none")) => SmtpSecurity::None,
        (false, Some(other)) => {
            return Err(invalid(format!(
                "{shown}: tls={other:?} is not a choice; smtp:// takes tls=starttls (the default) or \
                 tls=none, and smtps:// is TLS from the start"
            )));
        }
    };
    let port = match (url.port(), security) {
        (Some(SUBMISSION_PORT), SmtpSecurity::Tls) => {
            return Err(invalid(format!(
                "{shown}: port {SUBMISSION_PORT} speaks STARTTLS, not TLS from the start; use \
                 smtp://host:{SUBMISSION_PORT} or smtps://host:{SUBMISSIONS_PORT}"
            )));
        }
        (Some(SUBMISSIONS_PORT), SmtpSecurity::StartTls | SmtpSecurity::None) => {
            return Err(invalid(format!(
                "{shown}: port {SUBMISSIONS_PORT} speaks TLS from the start; use \
                 smtps://host:{SUBMISSIONS_PORT}"
            )));
        }
        (Some(port), _) => port,
        (None, SmtpSecurity::StartTls) => SUBMISSION_PORT,
        (None, SmtpSecurity::Tls) => SUBMISSIONS_PORT,
        (None, SmtpSecurity::None) => {
            return Err(invalid(format!(
                "{shown}: tls=none is for a test server on this machine; name its port \
                 (smtp://127.0.0.1:2525?tls=none)"
            )));
        }
    };
    let credentials = credentials_of(&url, &shown)?;
    if credentials.is_some() && security == SmtpSecurity::None {
        return Err(invalid(format!(
            "{shown}: with tls=none the password would cross the network in clear; use smtp:// \
             (STARTTLS) or smtps://, or no user and password"
        )));
    }
    Ok(SmtpServer {
        host,
        port,
        security,
        credentials,
    })
}

fn credentials_of(url: &url::Url, shown: &str) -> Result<Option<SmtpCredentials>, MailError> {
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| {
                MailError::InvalidUrl(format!(
                    "{shown}: the user or password is not UTF-8 once percent-decoded"
                ))
            })
    };
    match (url.username(), url.password()) {
        ("", None) => Ok(None),
        (user, Some(password)) if !user.is_empty() && !password.is_empty() => {
            Ok(Some(SmtpCredentials::new(decode(user)?, decode(password)?)))
        }
        _ => Err(MailError::InvalidUrl(format!(
            "{shown}: give both a user and a password (smtp://user:pass@host), or neither"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(url: &str) -> String {
        match url.parse::<MailTransport>() {
            Ok(transport) => panic!("{url} was accepted as {transport:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn smtp_urls_require_starttls_by_default() {
        let transport: MailTransport = "smtp://mailer:s3cret@mail.example.com".parse().unwrap();
        let MailTransport::Smtp(server) = transport else {
            panic!("not SMTP");
        };
        assert_eq!(server.host, "mail.example.com");
        assert_eq!(server.port, SUBMISSION_PORT);
        assert_eq!(server.security, SmtpSecurity::StartTls);
        let credentials = server.credentials.unwrap();
        assert_eq!(credentials.username, "mailer");
        assert_eq!(credentials.password(), "s3cret");
        let explicit: MailTransport = "smtp://mail.example.com:2587?tls=starttls".parse().unwrap();
        assert!(matches!(
            explicit,
            MailTransport::Smtp(SmtpServer {
                port: 2587,
                security: SmtpSecurity::StartTls,
                credentials: None,
                ..
            })
        ));
    }

    #[test]
    fn smtps_urls_speak_tls_from_the_start() {
        let transport: MailTransport = "smtps://u:p@mail.example.com".parse().unwrap();
        assert!(matches!(
            transport,
            MailTransport::Smtp(SmtpServer {
                port: SUBMISSIONS_PORT,
                security: SmtpSecurity::Tls,
                ..
            })
        ));
        let transport: MailTransport = "SMTPS://[::1]:10465".parse().unwrap();
        assert!(matches!(
            transport,
            MailTransport::Smtp(SmtpServer { ref host, port: 10465, .. }) if host == "::1"
        ));
    }

    #[test]
    fn plain_smtp_is_said_explicitly_with_a_port_and_no_password() {
        let transport: MailTransport = "smtp://127.0.0.1:2525?tls=none".parse().unwrap();
        assert_eq!(
            transport,
            MailTransport::Smtp(SmtpServer {
                host: "127.0.0.1".to_owned(),
                port: 2525,
                security: SmtpSecurity::None,
                credentials: None,
            })
        );
        assert!(error_of("smtp://127.0.0.1?tls=none").contains("name its port"));
        assert!(error_of("smtp://u:s3cret@127.0.0.1:2525?tls=none").contains("in clear"));
        assert!(error_of("smtps://127.0.0.1:2525?tls=none").contains("takes no tls parameter"));
    }

    #[test]
    fn file_urls_name_a_folder() {
        assert_eq!(
            "file://data/mail".parse::<MailTransport>().unwrap(),
            MailTransport::Files(PathBuf::from("data/mail"))
        );
        assert_eq!(
            "file:///var/spool/console"
                .parse::<MailTransport>()
                .unwrap(),
            MailTransport::Files(PathBuf::from("/var/spool/console"))
        );
        assert!(error_of("file://").contains("names no folder"));
        assert!(error_of("file://data/mail?x=1").contains("query"));
    }

    #[test]
    fn bad_mail_urls_say_what_to_write_instead() {
        let cases = [
            ("", "it is empty"),
            ("mail.example.com:587", "has no scheme"),
            ("http://mail.example.com", "unsupported scheme \"http\""),
            ("smtp+tls://mail.example.com", "unsupported scheme"),
            ("smtp://", "names no host"),
            ("smtp://mail.example.com/inbox", "has a path"),
            (
                "smtp://mail.example.com?tls=yes",
                "tls=\"yes\" is not a choice",
            ),
            (
                "smtp://mail.example.com?tls=none&tls=none",
                "more than once",
            ),
            (
                "smtp://mail.example.com?timeout=5",
                "the parameter \"timeout\"",
            ),
            ("smtps://mail.example.com:587", "port 587 speaks STARTTLS"),
            ("smtp://mail.example.com:465", "port 465 speaks TLS"),
            (
                "smtp://mailer@mail.example.com",
                "both a user and a password",
            ),
            ("smtp://mail.example.com#x", "fragment"),
        ];
        for (url, expected) in cases {
            let error = error_of(url);
            assert!(
                error.starts_with("MAIL_URL is malformed: "),
                "{url}: {error}"
            );
            assert!(error.contains(expected), "{url}: {error}");
        }
    }

    #[test]
    fn passwords_appear_in_no_error_and_no_debug_or_display_form() {
        for url in [
            "smtp://mailer:s3cret@mail.example.com:465",
            "smtps://mailer:s3cret@mail.example.com:587",
            "smtp://mailer:s3cret@127.0.0.1:2525?tls=none",
            "smtp://mailer:s3cret@mail.example.com/path",
            "smtp://mailer:s3cret@mail.example.com?tls=maybe",
            "smtp://mailer:s3cret@[mail.example.com",
            "smtp+tls://mailer:s3cret@mail.example.com",
            "mailer:s3cret@mail.example.com",
            "smtp://mailer:s3cret@mail.example.com?password=s3cret&x=1",
        ] {
            let error = error_of(url);
            assert!(!error.contains("s3cret"), "{url}: {error}");
        }
        let config = MailConfig::new(
            "smtp://mailer:s3cret@mail.example.com",
            "Console <no-reply@example.com>",
        )
        .unwrap();
        for shown in [format!("{config:?}"), config.transport.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("mailer"), "{shown}");
        }
        assert_eq!(
            config.transport.to_string(),
            "smtp://mailer:***@mail.example.com:587 (STARTTLS)"
        );
    }

    #[test]
    fn passwords_are_percent_decoded() {
        let transport: MailTransport = "smtps://me%40example.com:p%3Ass%40rd@mail.example.com"
            .parse()
            .unwrap();
        let MailTransport::Smtp(SmtpServer {
            credentials: Some(credentials),
            ..
        }) = transport
        else {
            panic!("no credentials");
        };
        assert_eq!(credentials.username, "me@example.com");
        assert_eq!(credentials.password(), "p:ss@rd");
    }

    #[test]
    fn scrubbing_hides_the_password_in_every_form_it_is_sent() {
        let credentials = SmtpCredentials::new("mailer", "s3cret");
        let plain = "AG1haWxlcgBzM2NyZXQ="; // base64 of "\0mailer\0s3cret"
        let login = "czNjcmV0"; // base64 of "s3cret"
        let text = format!("535 rejected s3cret {plain} {login}");
        assert_eq!(credentials.scrub(&text), "535 rejected *** *** ***");
    }

    #[test]
    fn mail_from_must_be_an_address() {
        let error = MailConfig::new("file://mail", "not an address").unwrap_err();
        assert!(error
            .to_string()
            .starts_with("MAIL_FROM is not a valid email address"));
        let config = MailConfig::new("file://mail", " Console <no-reply@example.com> ").unwrap();
        assert_eq!(config.from.email(), "no-reply@example.com");
        assert_eq!(config.from.domain(), "example.com");
    }

    #[test]
    fn the_default_schedule_doubles_from_30_seconds_to_an_hour() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=10).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        // The nine waits between ten attempts: about three hours.
        let total: u64 = waits[..9].iter().sum();
        assert_eq!(total, 11_010);
        assert_eq!(policy.delay_after(u32::MAX), policy.max_delay);
    }
}
