//! Sending one customer email over SMTP: composition (text and HTML parts, per language)
//! and the relay's answer sorted into retry-later or give-up. When and whether to send
//! is the jobs' business.

mod compose;
mod texts;

use std::fmt;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::email::{EmailSettings, SmtpTls};
use crate::domain::Lang;

/// lettre's timeout bounds each step; this bounds a relay that answers every step slowly.
const WHOLE_SEND_STEPS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Try again later: no connection, a timeout, a 4xx reply, or the relay refusing our
    /// credentials. After a lost connection the message may still have been delivered,
    /// so a retry must reuse the same `message_id`.
    #[error("email not sent, retry later: {0}")]
    Transient(String),
    /// This message will never go: a 5xx reply to it, or an address or URL we cannot use.
    #[error("email refused: {0}")]
    Permanent(String),
}

impl EmailError {
    pub fn is_transient(&self) -> bool {
        matches!(self, EmailError::Transient(_))
    }
}

/// One message to one customer.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `<left@right>`, derived by the caller from its idempotency key so that a resend
    /// is recognisable as the same message.
    pub message_id: String,
    pub to_name: String,
    pub to_email: String,
    /// Sets `Content-Language`, the HTML `lang` and the words around the text.
    pub lang: Lang,
    pub subject: String,
    /// Plain text; blank lines separate paragraphs.
    pub text: String,
    pub action: Option<Action>,
    /// Adds the one-click unsubscribe headers (RFC 8058) and a footer link.
    pub unsubscribe: Option<String>,
}

/// A button in the HTML part; a labelled URL in the text part.
#[derive(Debug, Clone)]
pub struct Action {
    pub label: String,
    pub url: String,
}

/// One per process; cheap to clone. Opens a connection per message: our volume is a few
/// messages per lead, and a fresh connection leaves no half-broken one for the next send.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    timeout: std::time::Duration,
    relay: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(s: &EmailSettings) -> Result<Mailer, EmailError> {
        let params =
            || TlsParameters::new_rustls(s.host.clone()).map_err(|e| EmailError::Permanent(format!("TLS setup: {e}")));
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Tls => Tls::Wrapper(params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(s.port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if let (Some(user), Some(pass)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(
                user.expose_secret().to_owned(),
                pass.expose_secret().to_owned(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: s.from.clone(),
            reply_to: s.reply_to.clone(),
            timeout: s.timeout,
            relay: format!("{}:{}", s.host, s.port),
        })
    }

    /// Sends one message. Transient: connection refused, timeouts, 4xx replies (retry
    /// later). Permanent: 5xx replies, an invalid address.
    pub async fn send(&self, m: &Outgoing) -> Result<(), EmailError> {
        let message = compose::message(m, &self.from, self.reply_to.as_ref())?;
        let bound = self.timeout.saturating_mul(WHOLE_SEND_STEPS);
        match tokio::time::timeout(bound, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(EmailError::Transient(format!(
                "{} did not finish within {bound:?}",
                self.relay
            ))),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> EmailError {
    let text = format!("{e}");
    match e.status().map(u16::from) {
        Some(code) if is_permanent(code) => EmailError::Permanent(text),
        // No reply code (network, TLS, a garbled reply) or 4xx: nothing about this message.
        _ => EmailError::Transient(text),
    }
}

/// 5xx, except the replies about our credentials (RFC 4954): those refuse every message
/// until the operator fixes the settings, so the message itself is not to be given up.
fn is_permanent(code: u16) -> bool {
    (500..600).contains(&code) && !matches!(code, 530 | 534 | 535 | 538)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::email::{build, RawEmail};

    /// Outside a runtime (start-up code may be) and with no process-wide rustls provider.
    #[test]
    fn builds_for_every_tls_mode_without_a_runtime() {
        for tls in ["none", "starttls", "tls"] {
            let raw = RawEmail {
                host: Some("smtp.example.com".into()),
                tls: Some(tls.into()),
                from: Some("Acme <ventas@acme.example>".into()),
                ..RawEmail::default()
            };
            let settings = build(Some(raw), &|_| None).unwrap().unwrap();
            let mailer = Mailer::new(&settings).unwrap();
            assert!(format!("{mailer:?}").contains("smtp.example.com:"), "{tls}");
        }
    }

    #[test]
    fn five_hundreds_are_permanent_except_authentication() {
        for code in [421, 450, 451, 452, 454] {
            assert!(!is_permanent(code), "{code}");
        }
        for code in [500, 550, 552, 553, 554] {
            assert!(is_permanent(code), "{code}");
        }
        for code in [530, 534, 535, 538] {
            assert!(!is_permanent(code), "{code}");
        }
    }
}
