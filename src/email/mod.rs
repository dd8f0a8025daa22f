//! Sending one customer email over SMTP: composition (text and HTML parts, per language)
//! and the relay's answer sorted into retry-later or give-up. When and whether to send
//! is the jobs' business.

mod compose;
pub mod texts;

use std::fmt;

use lettre::message::Mailbox;

use crate::config::email::EmailSettings;
use crate::domain::Lang;

mod smtp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Try again later: no connection, a timeout or a lost connection before the message
    /// was handed over, a 4xx reply, or the relay refusing our credentials.
    #[error("email not sent, retry later: {0}")]
    Transient(String),
    /// This message will never go: a 5xx reply to it, or an address or URL we cannot use.
    #[error("email refused: {0}")]
    Permanent(String),
    /// The whole message was handed to the relay, then the connection ended or timed out
    /// before its answer: it may have been delivered. Sending it again could deliver it
    /// twice.
    #[error("email may have been delivered: {0}")]
    Unknown(String),
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
    relay: std::sync::Arc<smtp::Relay>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("relay", &self.relay.name())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    pub fn new(s: &EmailSettings) -> Result<Mailer, EmailError> {
        Ok(Mailer {
            relay: std::sync::Arc::new(smtp::Relay::new(s)?),
            from: s.from.clone(),
            reply_to: s.reply_to.clone(),
        })
    }

    /// Sends one message. Transient: no connection, a timeout or a 4xx reply before the
    /// relay had the whole message. Permanent: a 5xx reply, an invalid address. Unknown:
    /// the relay had the whole message and did not answer.
    pub async fn send(&self, m: &Outgoing) -> Result<(), EmailError> {
        let message = compose::message(m, &self.from, self.reply_to.as_ref())?;
        self.relay.deliver(&message).await
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
