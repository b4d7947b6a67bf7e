//! The messages accounts send: each a subject, a plain-text part and an HTML part, rendered from the
//! askama templates in `templates/` beside this file (HTML escaped, inline CSS only, no images, so
//! they look the same in every mail client and load nothing from anywhere).
//!
//! Every link is absolute: a path of the caller's, on the [`PublicOrigin`] people reach the site at.

use std::fmt;
use std::net::IpAddr;
use std::ops::Deref;
use std::time::Duration;

use askama::Template;
use time::OffsetDateTime;

use super::{MailAddress, MailError};

/// The `https://host[:port][/base]` people reach the site at (`PUBLIC_ORIGIN`, with the base path
/// if the site is mounted under one): every link in a message starts with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    /// The origin and base path, without a trailing slash.
    base: String,
    /// `host[:port]`, as messages name the site.
    site: String,
}

impl PublicOrigin {
    /// Reads an `http://` or `https://` URL with a host and at most a path (no user, query or
    /// fragment).
    pub fn parse(text: &str) -> Result<Self, MailError> {
        let invalid = |reason: &str| MailError::InvalidOrigin(format!("{text:?} {reason}"));
        let url = url::Url::parse(text.trim()).map_err(|e| invalid(&format!("({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("is not an http:// or https:// URL"));
        }
        let Some(host) = url.host_str() else {
            return Err(invalid("names no host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("has a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("has a query or fragment"));
        }
        let site = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { base, site })
    }

    /// The absolute URL of `path` (which starts with one `/`, and may carry a query): the origin,
    /// the base path, then `path`.
    pub fn link(&self, path: &str) -> Result<String, MailError> {
        let invalid = || MailError::InvalidLink(path.to_owned());
        if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
            return Err(invalid());
        }
        let url = url::Url::parse(&format!("{}{path}", self.base)).map_err(|_| invalid())?;
        // A path cannot change the host, but say so rather than trust it.
        if url.host_str().map(|host| host.to_owned()) != self.host() {
            return Err(invalid());
        }
        Ok(url.into())
    }

    fn host(&self) -> Option<String> {
        url::Url::parse(&self.base)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
    }

    /// How messages name the site: `host[:port]`.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The origin and base path, without a trailing slash: the site's home page.
    pub fn as_str(&self) -> &str {
        &self.base
    }
}

impl fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// Which message a [`Message`] is; the outbox keeps it beside each message for staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// "Confirm your email address", with a link.
    EmailVerification,
    /// To the new address of an email change: "Confirm your new email address", with a link.
    EmailChange,
    /// To the old address of an email change: it is being changed, and a link if that is news.
    EmailChangeNotice,
    /// "Reset your password", with a link.
    PasswordReset,
    /// "Your password was changed" and every session ended, with a link if that is news.
    PasswordChanged,
    /// A sign-in from a new device, with "Yes, it was me" and "This wasn't me".
    NewSignIn,
    /// Two-step sign-in changed (a factor added or removed, recovery codes renewed or used), with
    /// a link if that is news.
    TwoStepChanged,
}

impl MessageKind {
    /// The name stored in the outbox: `email_verification`, `email_change`,
    /// `email_change_notice`, `password_reset`, `password_changed`, `new_sign_in`,
    /// `two_step_changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::EmailChange => "email_change",
            Self::EmailChangeNotice => "email_change_notice",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::NewSignIn => "new_sign_in",
            Self::TwoStepChanged => "two_step_changed",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a new sign-in alert says about the sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAlert {
    /// The device, as people read it: "Firefox 128 on Windows 11".
    pub device: String,
    /// Where, if known: "Berlin, Germany".
    pub place: Option<String>,
    /// The client's address, if known.
    pub ip: Option<IpAddr>,
    /// When.
    pub at: OffsetDateTime,
}

/// A rendered message for one recipient, ready for [`Outbox::enqueue`](super::Outbox::enqueue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    kind: MessageKind,
    to: MailAddress,
    subject: String,
    text: String,
    html: String,
}

impl Message {
    /// Which message this is.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The recipient.
    pub fn to(&self) -> &MailAddress {
        &self.to
    }

    /// The subject line.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text part.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTML part.
    pub fn html(&self) -> &str {
        &self.html
    }

    /// "Confirm your email address": `link` (a path on `origin`) proves the address is theirs, for
    /// `valid_for`.
    pub fn email_verification(
        origin: &PublicOrigin,
        to: &str,
        username: &str,
        link: &str,
        valid_for: Duration,
    ) -> Result<Self, MailError> {
        let context = EmailVerification {
            common: Common::new(origin, username),
            link: origin.link(link)?,
            valid_for: duration_words(valid_for),
        };
        let subject = format!("Confirm your email address for {}", origin.site());
        Self::render(MessageKind::EmailVerification, to, subject, &context)
    }

    /// To the new address of an email change: "Confirm your new email address"; the change takes
    /// effect when `link` (a path on `origin`) is opened, within `valid_for`.
    pub fn email_change(
        origin: &PublicOrigin,
        new_address: &str,
        username: &str,
        link: &str,
        valid_for: Duration,
    ) -> Result<Self, MailError> {
        let context = EmailChange {
            common: Common::new(origin, username),
            link: origin.link(link)?,
            valid_for: duration_words(valid_for),
        };
        let subject = format!("Confirm your new email address for {}", origin.site());
        Self::render(MessageKind::EmailChange, new_address, subject, &context)
    }

    /// To the old address of an email change: the address is being changed to `new_address`; if
    /// that is news, `link` (a path on `origin`) is where to act.
    pub fn email_change_notice(
        origin: &PublicOrigin,
        old_address: &str,
        username: &str,
        new_address: &str,
        link: &str,
    ) -> Result<Self, MailError> {
        let context = EmailChangeNotice {
            common: Common::new(origin, username),
            new_address: new_address.to_owned(),
            link: origin.link(link)?,
        };
        let subject = format!("Your email address on {} is being changed", origin.site());
        Self::render(
            MessageKind::EmailChangeNotice,
            old_address,
            subject,
            &context,
        )
    }

    /// "Reset your password": `link` (a path on `origin`) lets them choose a new one, once, for
    /// `valid_for`.
    pub fn password_reset(
        origin: &PublicOrigin,
        to: &str,
        username: &str,
        link: &str,
        valid_for: Duration,
    ) -> Result<Self, MailError> {
        let context = PasswordReset {
            common: Common::new(origin, username),
            link: origin.link(link)?,
            valid_for: duration_words(valid_for),
        };
        let subject = format!("Reset your password on {}", origin.site());
        Self::render(MessageKind::PasswordReset, to, subject, &context)
    }

    /// "Your password was changed" at `at`, and every session signed out; if that is news, `link`
    /// (a path on `origin`, such as the password reset page) is where to act.
    pub fn password_changed(
        origin: &PublicOrigin,
        to: &str,
        username: &str,
        at: OffsetDateTime,
        link: &str,
    ) -> Result<Self, MailError> {
        let context = PasswordChanged {
            common: Common::new(origin, username),
            at: moment_words(at),
            link: origin.link(link)?,
        };
        let subject = format!("Your password on {} was changed", origin.site());
        Self::render(MessageKind::PasswordChanged, to, subject, &context)
    }

    /// Two-step sign-in changed at `at`: `change` says how, in a sentence without its full stop
    /// ("A passkey was added"); if that is news, `link` (a path on `origin`, such as the password
    /// reset page) is where to act. A second factor changing is how someone who took an account keeps
    /// it, so its owner hears of every change.
    pub fn two_step_changed(
        origin: &PublicOrigin,
        to: &str,
        username: &str,
        change: &str,
        at: OffsetDateTime,
        link: &str,
    ) -> Result<Self, MailError> {
        let context = TwoStepChanged {
            common: Common::new(origin, username),
            change: change.to_owned(),
            at: moment_words(at),
            link: origin.link(link)?,
        };
        let subject = format!("Two-step sign-in changed on {}", origin.site());
        Self::render(MessageKind::TwoStepChanged, to, subject, &context)
    }

    /// A sign-in from a new device: device, place, address and time, and two links (paths on
    /// `origin`): `it_was_me` ("Yes, it was me") and `not_me` ("This wasn't me").
    pub fn new_sign_in(
        origin: &PublicOrigin,
        to: &str,
        username: &str,
        sign_in: &SignInAlert,
        it_was_me: &str,
        not_me: &str,
    ) -> Result<Self, MailError> {
        let context = NewSignIn {
            common: Common::new(origin, username),
            device: sign_in.device.clone(),
            place: sign_in
                .place
                .clone()
                .unwrap_or_else(|| "Unknown".to_owned()),
            ip: sign_in
                .ip
                .map_or_else(|| "Unknown".to_owned(), crate::sessions::ip_text),
            at: moment_words(sign_in.at),
            it_was_me: origin.link(it_was_me)?,
            not_me: origin.link(not_me)?,
        };
        let subject = format!("New sign-in to your account on {}", origin.site());
        Self::render(MessageKind::NewSignIn, to, subject, &context)
    }

    fn render<C: Templates>(
        kind: MessageKind,
        to: &str,
        subject: String,
        context: &C,
    ) -> Result<Self, MailError> {
        let to = MailAddress::parse("the recipient", to)?;
        let template_error = |e: askama::Error| MailError::Template {
            kind: kind.as_str(),
            detail: e.to_string(),
        };
        let (text, html) = context.render(&subject).map_err(template_error)?;
        Ok(Self {
            kind,
            to,
            subject,
            text,
            html,
        })
    }
}

/// What every message shows: the site, the account, and the home page in the footer.
struct Common {
    site: String,
    home: String,
    username: String,
}

impl Common {
    fn new(origin: &PublicOrigin, username: &str) -> Self {
        Self {
            site: origin.site().to_owned(),
            home: origin.as_str().to_owned(),
            username: username.to_owned(),
        }
    }
}

struct EmailVerification {
    common: Common,
    link: String,
    valid_for: String,
}

struct EmailChange {
    common: Common,
    link: String,
    valid_for: String,
}

struct EmailChangeNotice {
    common: Common,
    new_address: String,
    link: String,
}

struct PasswordReset {
    common: Common,
    link: String,
    valid_for: String,
}

struct PasswordChanged {
    common: Common,
    at: String,
    link: String,
}

struct TwoStepChanged {
    common: Common,
    change: String,
    at: String,
    link: String,
}

struct NewSignIn {
    common: Common,
    device: String,
    place: String,
    ip: String,
    at: String,
    it_was_me: String,
    not_me: String,
}

/// A message's two templates, text and HTML, over one context.
trait Templates {
    fn render(&self, subject: &str) -> Result<(String, String), askama::Error>;
}

/// What a template sees: the message's context (through `Deref`, so templates name its fields
/// directly) and the subject, which the HTML part shows as its title.
struct View<'a, C> {
    context: &'a C,
    subject: &'a str,
}

impl<C> Deref for View<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.context
    }
}

/// For each context, a module with its `Text` and `Html` templates (the files
/// `templates/<name>.txt` and `templates/<name>.html`) and the [`Templates`] that renders both.
macro_rules! templates {
    ($($module:ident: $context:ident = $text:tt, $html:tt;)*) => {$(
        mod $module {
            use super::*;

            #[derive(Template)]
            #[template(path = $text)]
            pub(super) struct Text<'a>(pub(super) View<'a, $context>);

            #[derive(Template)]
            #[template(path = $html)]
            pub(super) struct Html<'a>(pub(super) View<'a, $context>);

            impl<'a> Deref for Text<'a> {
                type Target = View<'a, $context>;

                fn deref(&self) -> &Self::Target {
                    &self.0
                }
            }

            impl<'a> Deref for Html<'a> {
                type Target = View<'a, $context>;

                fn deref(&self) -> &Self::Target {
                    &self.0
                }
            }
        }

        impl Templates for $context {
            fn render(&self, subject: &str) -> Result<(String, String), askama::Error> {
                let view = || View { context: self, subject };
                Ok(($module::Text(view()).render()?, $module::Html(view()).render()?))
            }
        }
    )*};
}

templates! {
    email_verification: EmailVerification = "email_verification.txt", "email_verification.html";
    email_change: EmailChange = "email_change.txt", "email_change.html";
    email_change_notice: EmailChangeNotice = "email_change_notice.txt", "email_change_notice.html";
    password_reset: PasswordReset = "password_reset.txt", "password_reset.html";
    password_changed: PasswordChanged = "password_changed.txt", "password_changed.html";
    new_sign_in: NewSignIn = "new_sign_in.txt", "new_sign_in.html";
    two_step_changed: TwoStepChanged = "two_step_changed.txt", "two_step_changed.html";
}

/// "1 hour", "30 minutes", "2 days": a validity in the largest unit that says it exactly.
fn duration_words(duration: Duration) -> String {
    let seconds = duration.as_secs().max(1);
    let (count, unit) = if seconds.is_multiple_of(86_400) {
        (seconds / 86_400, "day")
    } else if seconds.is_multiple_of(3600) {
        (seconds / 3600, "hour")
    } else if seconds.is_multiple_of(60) {
        (seconds / 60, "minute")
    } else {
        (seconds, "second")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// "Thu, 1 May 2025 at 14:03 UTC": a moment in UTC, which every reader can convert.
fn moment_words(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day padding:none] [month repr:short] [year] at [hour]:[minute] UTC"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> PublicOrigin {
        PublicOrigin::parse("https://account.example.com/sso/").unwrap()
    }

    #[test]
    fn links_are_absolute_on_the_public_origin_and_its_base_path() {
        let origin = origin();
        assert_eq!(origin.site(), "account.example.com");
        assert_eq!(
            origin.link("/reset?token=abc").unwrap(),
            "https://account.example.com/sso/reset?token=abc"
        );
        for bad in ["reset", "//evil.example/x", "/\\evil.example", ""] {
            assert!(
                matches!(origin.link(bad), Err(MailError::InvalidLink(_))),
                "{bad}"
            );
        }
        let local = PublicOrigin::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(local.site(), "127.0.0.1:3000");
        assert_eq!(local.link("/a").unwrap(), "http://127.0.0.1:3000/a");
        for bad in [
            "ftp://example.com",
            "https://u:p@example.com",
            "https://example.com/?x=1",
            "example.com",
        ] {
            assert!(PublicOrigin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_password_reset_has_both_parts_and_escapes_what_it_shows() {
        let message = Message::password_reset(
            &origin(),
            "alice@example.com",
            "<alice>",
            "/reset?token=abc",
            Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(message.kind(), MessageKind::PasswordReset);
        assert_eq!(message.to().email(), "alice@example.com");
        assert_eq!(
            message.subject(),
            "Reset your password on account.example.com"
        );
        for part in [message.text(), message.html()] {
            assert!(
                part.contains("https://account.example.com/sso/reset?token=abc"),
                "{part}"
            );
            assert!(part.contains("1 hour"), "{part}");
        }
        assert!(message.text().contains("Hello <alice>,"));
        assert!(
            message.html().contains("&#60;alice&#62;") || message.html().contains("&lt;alice&gt;")
        );
        assert!(!message.html().contains("<alice>"));
    }

    #[test]
    fn a_new_sign_in_alert_names_the_device_place_address_and_time() {
        let sign_in = SignInAlert {
            device: "Firefox 128 on Windows 11".to_owned(),
            place: Some("Berlin, Germany".to_owned()),
            ip: Some("203.0.113.5".parse().unwrap()),
            at: time::macros::datetime!(2025-05-01 14:03:09 UTC),
        };
        let message = Message::new_sign_in(
            &origin(),
            "alice@example.com",
            "alice",
            &sign_in,
            "/sign-ins/1/confirm",
            "/sign-ins/1/deny",
        )
        .unwrap();
        for part in [message.text(), message.html()] {
            for expected in [
                "Firefox 128 on Windows 11",
                "Berlin, Germany",
                "203.0.113.5",
                "Thu, 1 May 2025 at 14:03 UTC",
                "Yes, it was me",
                "This wasn",
                "https://account.example.com/sso/sign-ins/1/confirm",
                "https://account.example.com/sso/sign-ins/1/deny",
            ] {
                assert!(part.contains(expected), "{expected} missing from {part}");
            }
        }
    }

    #[test]
    fn a_two_step_notice_says_what_changed_and_when() {
        let at = time::macros::datetime!(2025-05-01 14:03:09 UTC);
        let message = Message::two_step_changed(
            &origin(),
            "alice@example.com",
            "alice",
            "A passkey was added",
            at,
            "/forgot-password",
        )
        .unwrap();
        assert_eq!(message.kind(), MessageKind::TwoStepChanged);
        assert_eq!(
            message.subject(),
            "Two-step sign-in changed on account.example.com"
        );
        for part in [message.text(), message.html()] {
            for expected in [
                "A passkey was added.",
                "Thu, 1 May 2025 at 14:03 UTC",
                "https://account.example.com/sso/forgot-password",
            ] {
                assert!(part.contains(expected), "{expected} missing from {part}");
            }
        }
    }

    #[test]
    fn every_message_renders_with_its_link() {
        let origin = origin();
        let day = Duration::from_secs(86_400);
        let at = time::macros::datetime!(2025-05-01 14:03 UTC);
        let messages = [
            Message::email_verification(&origin, "a@example.com", "alice", "/v?t=1", day),
            Message::email_change(&origin, "new@example.com", "alice", "/v?t=1", day),
            Message::email_change_notice(
                &origin,
                "old@example.com",
                "alice",
                "new@example.com",
                "/v?t=1",
            ),
            Message::password_reset(&origin, "a@example.com", "alice", "/v?t=1", day),
            Message::password_changed(&origin, "a@example.com", "alice", at, "/v?t=1"),
            Message::two_step_changed(
                &origin,
                "a@example.com",
                "alice",
                "A passkey was added",
                at,
                "/v?t=1",
            ),
        ];
        for message in messages {
            let message = message.unwrap();
            for part in [message.text(), message.html()] {
                assert!(
                    part.contains("https://account.example.com/sso/v?t=1"),
                    "{part}"
                );
                assert!(part.contains("alice"), "{part}");
            }
            assert!(message.html().starts_with("<!DOCTYPE html>"));
        }
    }

    #[test]
    fn a_bad_recipient_or_link_is_refused() {
        let day = Duration::from_secs(86_400);
        let error =
            Message::password_reset(&origin(), "not an address", "alice", "/r", day).unwrap_err();
        assert!(matches!(error, MailError::InvalidAddress { .. }), "{error}");
        let error =
            Message::password_reset(&origin(), "a@example.com", "alice", "https://evil", day)
                .unwrap_err();
        assert!(matches!(error, MailError::InvalidLink(_)), "{error}");
    }

    #[test]
    fn durations_and_moments_read_as_words() {
        assert_eq!(duration_words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(duration_words(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(duration_words(Duration::from_secs(2 * 86_400)), "2 days");
        assert_eq!(duration_words(Duration::from_secs(90)), "90 seconds");
        let at = time::macros::datetime!(2025-05-01 16:03 +02:00);
        assert_eq!(moment_words(at), "Thu, 1 May 2025 at 14:03 UTC");
    }
}
