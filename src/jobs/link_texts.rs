//! What leadgate writes on a deal about its payment link, per language (sales read it).

use crate::domain::Lang;

pub struct LinkTexts {
    pub made: &'static str,
    pub link: &'static str,
    pub amount: &'static str,
    pub expires: &'static str,
    pub not_made: &'static str,
    pub no_person: &'static str,
    pub bad_name: &'static str,
    pub bad_email: &'static str,
    pub bad_phone: &'static str,
    pub bad_amount: &'static str,
    pub refused: &'static str,
}

const ES: LinkTexts = LinkTexts {
    made: "Link de pago creado",
    link: "Link",
    amount: "Monto",
    expires: "Vence",
    not_made: "No se pudo crear el link de pago",
    no_person: "el negocio no tiene una persona de contacto",
    bad_name: "la persona no tiene un nombre válido",
    bad_email: "la persona no tiene un email válido",
    bad_phone: "la persona no tiene un teléfono válido",
    bad_amount: "el negocio no tiene un valor en una moneda que se pueda cobrar",
    refused: "la solicitud no es válida",
};

const PT_BR: LinkTexts = LinkTexts {
    made: "Link de pagamento criado",
    link: "Link",
    amount: "Valor",
    expires: "Expira",
    not_made: "Não foi possível criar o link de pagamento",
    no_person: "o negócio não tem uma pessoa de contato",
    bad_name: "a pessoa não tem um nome válido",
    bad_email: "a pessoa não tem um e-mail válido",
    bad_phone: "a pessoa não tem um telefone válido",
    bad_amount: "o negócio não tem um valor numa moeda que possa ser cobrada",
    refused: "a solicitação não é válida",
};

const EN: LinkTexts = LinkTexts {
    made: "Payment link created",
    link: "Link",
    amount: "Amount",
    expires: "Expires",
    not_made: "The payment link could not be created",
    no_person: "the deal has no contact person",
    bad_name: "the person has no valid name",
    bad_email: "the person has no valid email",
    bad_phone: "the person has no valid phone number",
    bad_amount: "the deal has no value in a currency that can be charged",
    refused: "the request is not valid",
};

pub fn texts(lang: Lang) -> &'static LinkTexts {
    match lang {
        Lang::Es => &ES,
        Lang::PtBr => &PT_BR,
        Lang::En => &EN,
    }
}
