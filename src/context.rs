//! Everything a request handler or a job needs, built once at start-up.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice, SecretString};

use crate::config::Settings;
use crate::crm::Crm;
use crate::domain::offer::Offer;
use crate::gateways::sandbox::SandboxGateway;
use crate::gateways::Gateways;
use crate::jobs::Queue;
use crate::metrics::Metrics;
use crate::store::Db;

pub struct AppContext {
    pub settings: Settings,
    /// Base URL without a trailing slash, as customers and gateways reach us.
    pub public_url: String,
    pub db: Db,
    pub crm: Arc<dyn Crm>,
    pub gateways: Gateways,
    pub sandbox: Arc<SandboxGateway>,
    pub queue: Queue,
    pub keys: Keys,
    pub metrics: Metrics,
    pub limits: crate::limits::Limits,
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Set when `[email]` names a mail server.
    pub mailer: Option<crate::email::Mailer>,
}

impl AppContext {
    pub fn offer(&self, slug: &str) -> Option<&Offer> {
        self.settings.offer(slug)
    }

    /// Whether a paid attempt of `offer` gets a confirmation email.
    pub fn sends_receipt(&self, offer: &Offer) -> bool {
        self.mailer.is_some() && offer.followup.receipt_email
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The client's address, believing `X-Forwarded-For` only from `[proxy] trusted`.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> std::net::IpAddr {
        let peer = req.peer_addr().map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let xff = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
        crate::domain::forwarded::client_ip(peer, xff, &self.settings.proxy.trusted)
    }

    /// The browser reached us over TLS: our public URL is https, or a trusted proxy says so.
    pub fn https(&self, req: &actix_web::HttpRequest) -> bool {
        if self.public_url.starts_with("https://") {
            return true;
        }
        let Some(peer) = req.peer_addr() else {
            return false;
        };
        let proto = req
            .headers()
            .get_all("x-forwarded-proto")
            .filter_map(|v| v.to_str().ok());
        crate::domain::forwarded::forwarded_https(peer.ip(), proto, &self.settings.proxy.trusted)
    }
}

/// Purpose-specific keys derived from one master secret, so no two uses share a key.
pub struct Keys {
    pub resume: SecretSlice<u8>,
    pub sandbox: SecretSlice<u8>,
    pub forms: SecretSlice<u8>,
    pub unsubscribe: SecretSlice<u8>,
    pub payment_link: SecretSlice<u8>,
    pub session: actix_web::cookie::Key,
}

impl Keys {
    pub fn derive(master: &SecretString) -> Keys {
        let m = master.expose_secret().as_bytes();
        Keys {
            resume: SecretSlice::from(subkey(m, b"leadgate resume-link v1")),
            sandbox: SecretSlice::from(subkey(m, b"leadgate sandbox-webhook v1")),
            forms: SecretSlice::from(subkey(m, b"leadgate form-token v1")),
            unsubscribe: SecretSlice::from(subkey(m, b"leadgate unsubscribe v1")),
            payment_link: SecretSlice::from(subkey(m, b"leadgate payment-link v1")),
            session: actix_web::cookie::Key::derive_from(&subkey(m, b"leadgate session v1")),
        }
    }
}

fn subkey(master: &[u8], label: &[u8]) -> Vec<u8> {
    crate::domain::signing::tag(master, &[label]).to_vec()
}
