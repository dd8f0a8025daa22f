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
}

impl AppContext {
    pub fn offer(&self, slug: &str) -> Option<&Offer> {
        self.settings.offer(slug)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

/// Purpose-specific keys derived from one master secret, so no two uses share a key.
pub struct Keys {
    pub resume: SecretSlice<u8>,
    pub sandbox: SecretSlice<u8>,
    pub session: actix_web::cookie::Key,
}

impl Keys {
    pub fn derive(master: &SecretString) -> Keys {
        let m = master.expose_secret().as_bytes();
        Keys {
            resume: SecretSlice::from(subkey(m, b"leadgate resume-link v1")),
            sandbox: SecretSlice::from(subkey(m, b"leadgate sandbox-webhook v1")),
            session: actix_web::cookie::Key::derive_from(&subkey(m, b"leadgate session v1")),
        }
    }
}

fn subkey(master: &[u8], label: &[u8]) -> Vec<u8> {
    crate::domain::signing::tag(master, &[label]).to_vec()
}
