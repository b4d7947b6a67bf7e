//! Handing one stored message to the configured transport: an SMTP server through lettre, or a
//! file in a folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{MailTransport, SmtpCredentials, SmtpSecurity, SmtpServer};
use super::MailError;

/// Most characters of a delivery error kept on the message.
const MAX_ERROR_CHARS: usize = 500;

/// What a worker sends with, built once from [`MailTransport`].
pub(crate) enum Sender {
    Smtp {
        // Boxed: lettre's transport is ten times the size of the other variant.
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        credentials: Option<SmtpCredentials>,
    },
    Files(PathBuf),
}

/// One stored message, as the worker claimed it.
pub(crate) struct Outgoing<'a> {
    pub(crate) id: i64,
    pub(crate) queued_at: i64,
    pub(crate) sender: &'a str,
    pub(crate) recipient: &'a str,
    pub(crate) message: &'a [u8],
}

impl Sender {
    /// The sender for `transport`; an SMTP command waits at most `timeout` for the server.
    pub(crate) fn new(transport: &MailTransport, timeout: Duration) -> Result<Self, MailError> {
        match transport {
            MailTransport::Files(folder) => Ok(Self::Files(folder.clone())),
            MailTransport::Smtp(server) => smtp(server, timeout),
        }
    }

    /// Delivers one message, or says why not in one line with no password in it.
    pub(crate) async fn send(&self, outgoing: &Outgoing<'_>) -> Result<(), String> {
        let envelope = envelope(outgoing)?;
        match self {
            Self::Smtp {
                transport,
                credentials,
            } => {
                let result = transport.send_raw(&envelope, outgoing.message).await;
                result.map(drop).map_err(|error| {
                    let text = error_text(&error);
                    match credentials {
                        Some(credentials) => credentials.scrub(&text),
                        None => text,
                    }
                })
            }
            Self::Files(folder) => write_file(folder, outgoing).await,
        }
    }
}

fn smtp(server: &SmtpServer, timeout: Duration) -> Result<Sender, MailError> {
    let host = server.host.as_str();
    let transport_error = |e: lettre::transport::smtp::Error| MailError::Transport {
        server: format!("{host}:{}", server.port),
        detail: error_text(&e),
    };
    let builder = match server.security {
        SmtpSecurity::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(transport_error)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(transport_error)?
        }
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    if server.security == SmtpSecurity::None && server.credentials.is_some() {
        // MAIL_URL refuses this too; a transport built by hand must not get round it.
        return Err(MailError::Transport {
            server: format!("{host}:{}", server.port),
            detail: "a password is never sent without TLS; use STARTTLS or TLS".to_owned(),
        });
    }
    let mut builder = builder.port(server.port).timeout(Some(timeout));
    if let Some(credentials) = &server.credentials {
        builder = builder.credentials(Credentials::new(
            credentials.username.clone(),
            credentials.password().to_owned(),
        ));
    }
    Ok(Sender::Smtp {
        transport: Box::new(builder.build()),
        credentials: server.credentials.clone(),
    })
}

fn envelope(outgoing: &Outgoing<'_>) -> Result<Envelope, String> {
    let address = |text: &str| {
        text.parse::<Address>()
            .map_err(|e| format!("the stored address {text:?} is not valid: {e}"))
    };
    Envelope::new(
        Some(address(outgoing.sender)?),
        vec![address(outgoing.recipient)?],
    )
    .map_err(|e| format!("no envelope for the stored addresses: {e}"))
}

/// Writes `<queued millis>-<id>.eml` through a temporary file renamed into place, so that whoever
/// reads the folder never sees half a message; writing it again (after a crash) replaces it.
async fn write_file(folder: &Path, outgoing: &Outgoing<'_>) -> Result<(), String> {
    let name = format!("{}-{}.eml", outgoing.queued_at, outgoing.id);
    let path = folder.join(&name);
    let partial = folder.join(format!(".{name}.partial"));
    let bytes = outgoing.message.to_vec();
    let written_path = path.clone();
    let folder = folder.to_path_buf();
    let written = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&folder)?;
        std::fs::write(&partial, &bytes)?;
        std::fs::rename(&partial, &written_path)
    })
    .await;
    match written {
        Ok(Ok(())) => {
            tracing::info!(path = %path.display(), id = outgoing.id, "mail written to a file");
            Ok(())
        }
        Ok(Err(error)) => Err(format!("cannot write {}: {error}", path.display())),
        Err(error) => Err(format!("the file writer stopped: {error}")),
    }
}

/// An error and its causes on one line, cut to [`MAX_ERROR_CHARS`].
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // lettre's messages often repeat their cause already.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_sent_without_tls_even_in_a_transport_built_by_hand() {
        let transport = MailTransport::Smtp(SmtpServer {
            host: "127.0.0.1".to_owned(),
            port: 2525,
            security: SmtpSecurity::None,
            credentials: Some(SmtpCredentials::new("mailer", "s3cret")),
        });
        let Err(error) = Sender::new(&transport, Duration::from_secs(1)) else {
            panic!("a transport sending a password in clear was built");
        };
        let error = error.to_string();
        assert!(error.contains("never sent without TLS"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
