//! One SMTP exchange, step by step, so a failure is known to have happened before or
//! after the relay had the whole message. lettre's transport runs the same steps but
//! reports only the error; its connection type lets us see where we are.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Message;
use secrecy::ExposeSecret;

use super::{classify, EmailError};
use crate::config::email::{EmailSettings, SmtpTls};

/// lettre's timeout bounds each step; this bounds a relay that answers every step slowly.
const WHOLE_SEND_STEPS: u32 = 4;

pub struct Relay {
    host: String,
    port: u16,
    tls: SmtpTls,
    params: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl Relay {
    pub fn new(s: &EmailSettings) -> Result<Relay, EmailError> {
        let params = match s.tls {
            SmtpTls::None => None,
            SmtpTls::StartTls | SmtpTls::Tls => Some(
                TlsParameters::new_rustls(s.host.clone())
                    .map_err(|e| EmailError::Permanent(format!("TLS setup: {e}")))?,
            ),
        };
        let credentials = match (&s.username, &s.password) {
            (Some(u), Some(p)) => Some(Credentials::new(
                u.expose_secret().to_owned(),
                p.expose_secret().to_owned(),
            )),
            _ => None,
        };
        Ok(Relay {
            host: s.host.clone(),
            port: s.port,
            tls: s.tls,
            params,
            credentials,
            timeout: s.timeout,
        })
    }

    pub fn name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub async fn deliver(&self, message: &Message) -> Result<(), EmailError> {
        let handed_over = AtomicBool::new(false);
        let bound = self.timeout.saturating_mul(WHOLE_SEND_STEPS);
        match tokio::time::timeout(bound, self.exchange(message, &handed_over)).await {
            Ok(result) => result,
            Err(_) if handed_over.load(Ordering::SeqCst) => Err(EmailError::Unknown(format!(
                "{} took the message but did not answer within {bound:?}",
                self.name()
            ))),
            Err(_) => Err(EmailError::Transient(format!(
                "{} did not finish within {bound:?}",
                self.name()
            ))),
        }
    }

    async fn exchange(&self, message: &Message, handed_over: &AtomicBool) -> Result<(), EmailError> {
        let hello = ClientId::default();
        let wrapper = match self.tls {
            SmtpTls::Tls => self.params.clone(),
            _ => None,
        };
        let server = (self.host.as_str(), self.port);
        let mut conn = AsyncSmtpConnection::connect_tokio1(server, Some(self.timeout), &hello, wrapper, None)
            .await
            .map_err(|e| classify(&e))?;
        let sent = self.session(&mut conn, &hello, message, handed_over).await;
        if sent.is_ok() {
            // The message is accepted; a failed goodbye changes nothing.
            let _ = conn.quit().await;
        } else {
            conn.abort().await;
        }
        sent
    }

    async fn session(
        &self,
        conn: &mut AsyncSmtpConnection,
        hello: &ClientId,
        message: &Message,
        handed_over: &AtomicBool,
    ) -> Result<(), EmailError> {
        let before = |e: lettre::transport::smtp::Error| classify(&e);
        if let (SmtpTls::StartTls, Some(params)) = (self.tls, &self.params) {
            if !conn.can_starttls() {
                return Err(EmailError::Transient(format!(
                    "{} does not offer STARTTLS",
                    self.name()
                )));
            }
            conn.starttls(params.clone(), hello).await.map_err(before)?;
        }
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(before)?;
        }
        let bytes = message.formatted();
        let envelope: &Envelope = message.envelope();
        let mut options = Vec::new();
        if !bytes.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(EmailError::Permanent("the relay does not take 8-bit messages".into()));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(before)?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![])).await.map_err(before)?;
        }
        conn.command(Data).await.map_err(before)?;
        handed_over.store(true, Ordering::SeqCst);
        match conn.message(&bytes).await {
            Ok(_) => Ok(()),
            // A reply about this message is an answer; no reply leaves it open.
            Err(e) if e.status().is_some() => Err(classify(&e)),
            Err(e) => Err(EmailError::Unknown(format!("{}: {e}", self.name()))),
        }
    }
}
