//! The words every email carries around the caller's text, per language. One struct per
//! language, so a missing translation is a compile error.

use crate::domain::Lang;

pub struct Texts {
    /// Above the raw URL under the button (HTML), for clients that block or break buttons.
    pub link_fallback: &'static str,
    /// The footer link, and in the plain text the label before the URL.
    pub unsubscribe: &'static str,
}

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Es => &ES,
        Lang::PtBr => &PT_BR,
        Lang::En => &EN,
    }
}

static ES: Texts = Texts {
    link_fallback: "Si el botón no funciona, copia este enlace en tu navegador:",
    unsubscribe: "No recibir más estos recordatorios",
};

static PT_BR: Texts = Texts {
    link_fallback: "Se o botão não funcionar, copie este link no seu navegador:",
    unsubscribe: "Não receber mais estes lembretes",
};

static EN: Texts = Texts {
    link_fallback: "If the button does not work, copy this link into your browser:",
    unsubscribe: "Unsubscribe from these reminders",
};

/// The email that carries a payment link. `{first}`, `{what}`, `{amount}`, `{expires}` and
/// `{seller}` are replaced; a line left with only an empty `{seller}` is dropped.
pub struct LinkTexts {
    pub subject: &'static str,
    pub body: &'static str,
    pub button: &'static str,
}

pub fn link_texts(lang: Lang) -> &'static LinkTexts {
    match lang {
        Lang::Es => &LINK_ES,
        Lang::PtBr => &LINK_PT_BR,
        Lang::En => &LINK_EN,
    }
}

static LINK_ES: LinkTexts = LinkTexts {
    subject: "Tu enlace de pago: {what}",
    body: "Hola {first}:\n\nAquí está tu enlace para pagar {what} ({amount}). Sirve hasta el {expires}.\n\n{seller}",
    button: "Pagar {amount}",
};

static LINK_PT_BR: LinkTexts = LinkTexts {
    subject: "Seu link de pagamento: {what}",
    body: "Olá, {first}!\n\nAqui está o seu link para pagar {what} ({amount}). Ele vale até {expires}.\n\n{seller}",
    button: "Pagar {amount}",
};

static LINK_EN: LinkTexts = LinkTexts {
    subject: "Your payment link: {what}",
    body: "Hello {first},\n\nHere is your link to pay for {what} ({amount}). It works until {expires}.\n\n{seller}",
    button: "Pay {amount}",
};
