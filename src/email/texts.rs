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
