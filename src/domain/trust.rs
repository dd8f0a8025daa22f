//! What an offer's pages tell the customer about who sells, what they agree to, and
//! where a paid customer goes next (`[seller]`, overridden per offer).

use std::sync::Arc;

use url::Url;

use super::Lang;

#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub seller: Seller,
    pub consent: Option<Consent>,
    /// Where the paid result page sends the buyer, with signed purchase parameters.
    pub thank_you_url: Option<Url>,
    /// An in-page link on the paid result page (no parameters).
    pub continue_url: Option<Url>,
}

#[derive(Debug, Clone, Default)]
pub struct Seller {
    pub name: Option<String>,
    pub logo: Option<Arc<Logo>>,
    pub privacy_url: Option<Url>,
    pub terms_url: Option<Url>,
}

/// A logo file read at start-up, served from our own origin (the CSP allows no other).
#[derive(Clone)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    /// `/logo/<hash of the bytes>.<ext>`: a new file is a new URL, so it can be cached for good.
    pub path: String,
}

/// Its size, not its bytes: settings are printed by `check-config` and in logs.
impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logo")
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// A checkbox the offer asks for, with the version of its text kept with the lead.
#[derive(Debug, Clone)]
pub struct Consent {
    /// Unticked, the form is refused with a field error.
    pub required: bool,
    pub version: String,
    pub text: Localized,
}

/// A text the marketer configures in each customer language.
#[derive(Debug, Clone)]
pub struct Localized {
    pub es: String,
    pub pt_br: String,
    pub en: String,
}

impl Localized {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Es => &self.es,
            Lang::PtBr => &self.pt_br,
            Lang::En => &self.en,
        }
    }
}

impl Seller {
    /// Anything to show in the header or the footer.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.logo.is_none() && self.privacy_url.is_none() && self.terms_url.is_none()
    }
}
