//! Customer-facing strings in Spanish (default), Brazilian Portuguese and English. One
//! struct per language, so a missing translation is a compile error.

use crate::domain::Lang;

pub struct Texts {
    pub name: &'static str,
    pub email: &'static str,
    pub phone: &'static str,
    pub phone_hint: &'static str,
    pub tax_id: &'static str,
    pub pay: &'static str,
    pub secure_note: &'static str,
    pub fix_errors: &'static str,
    pub product: &'static str,
    pub amount: &'static str,
    pub reference: &'static str,
    pub paid_title: &'static str,
    pub paid_body: &'static str,
    pub declined_title: &'static str,
    pub declined_body: &'static str,
    pub retry: &'static str,
    pub pending_title: &'static str,
    pub pending_body: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub bad_request_title: &'static str,
    pub too_large_body: &'static str,
    pub unavailable_title: &'static str,
    pub unavailable_body: &'static str,
    pub gateway_error_title: &'static str,
    pub gateway_error_body: &'static str,
    /// The lead is stored but its checkout could not be opened for our own reasons.
    pub saved_title: &'static str,
    pub saved_body: &'static str,
    pub link_invalid_title: &'static str,
    pub link_invalid_body: &'static str,
    errors: [&'static str; 7],
}

const ERROR_CODES: [&str; 7] = [
    "required",
    "too_short",
    "too_long",
    "invalid_email",
    "invalid_phone",
    "invalid_chars",
    "invalid_tax_id",
];

impl Texts {
    /// The message for a `ContactError::code()`.
    pub fn error(&self, code: &str) -> &'static str {
        let i = ERROR_CODES.iter().position(|c| *c == code).unwrap_or(0);
        self.errors[i]
    }
}

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Es => &ES,
        Lang::PtBr => &PT_BR,
        Lang::En => &EN,
    }
}

static ES: Texts = Texts {
    name: "Nombre completo",
    email: "Correo electrónico",
    phone: "Teléfono celular",
    phone_hint: "Con indicativo si no es de tu país, p. ej. +57 300 123 4567",
    tax_id: "Documento de identidad",
    pay: "Continuar al pago",
    secure_note: "Te llevaremos a la página segura de pago con tus datos ya llenos. Tu tarjeta nunca pasa por aquí.",
    fix_errors: "Revisa los campos marcados.",
    product: "Producto",
    amount: "Total",
    reference: "Referencia",
    paid_title: "¡Pago recibido!",
    paid_body: "Gracias. Te enviamos la confirmación a tu correo.",
    declined_title: "El pago no fue aprobado",
    declined_body: "No se realizó ningún cobro. Puedes intentarlo de nuevo con otro medio de pago.",
    retry: "Intentar de nuevo",
    pending_title: "Estamos confirmando tu pago",
    pending_body: "Esto puede tardar unos minutos. Esta página se actualiza sola.",
    not_found_title: "Página no encontrada",
    not_found_body: "El enlace que seguiste no existe o ya no está disponible.",
    bad_request_title: "No pudimos leer el formulario",
    too_large_body: "El formulario enviado es demasiado grande.",
    unavailable_title: "Servicio no disponible",
    unavailable_body: "Tuvimos un problema temporal. Inténtalo de nuevo en un momento.",
    gateway_error_title: "La pasarela de pago no respondió",
    gateway_error_body: "Guardamos tus datos. Inténtalo de nuevo en un momento; no tendrás que escribirlos otra vez.",
    saved_title: "Tus datos están a salvo",
    saved_body: "No pudimos abrir el pago en este momento. Inténtalo de nuevo en un momento; no tendrás que escribir tus datos otra vez.",
    link_invalid_title: "Este enlace ya no es válido",
    link_invalid_body: "El enlace venció o está incompleto. Puedes empezar de nuevo desde la oferta.",
    errors: [
        "Este campo es obligatorio.",
        "Es demasiado corto.",
        "Es demasiado largo.",
        "Escribe un correo válido, p. ej. nombre@ejemplo.com.",
        "Escribe un número de teléfono válido.",
        "Contiene caracteres no permitidos.",
        "Escribe un número de documento válido.",
    ],
};

static PT_BR: Texts = Texts {
    name: "Nome completo",
    email: "E-mail",
    phone: "Celular",
    phone_hint: "Com código do país se não for do Brasil, ex. +55 11 91234 5678",
    tax_id: "CPF ou documento",
    pay: "Continuar para o pagamento",
    secure_note:
        "Vamos levar você à página segura de pagamento com seus dados preenchidos. Seu cartão nunca passa por aqui.",
    fix_errors: "Verifique os campos marcados.",
    product: "Produto",
    amount: "Total",
    reference: "Referência",
    paid_title: "Pagamento recebido!",
    paid_body: "Obrigado. Enviamos a confirmação para o seu e-mail.",
    declined_title: "O pagamento não foi aprovado",
    declined_body: "Nenhuma cobrança foi feita. Você pode tentar de novo com outra forma de pagamento.",
    retry: "Tentar novamente",
    pending_title: "Estamos confirmando seu pagamento",
    pending_body: "Isso pode levar alguns minutos. Esta página se atualiza sozinha.",
    not_found_title: "Página não encontrada",
    not_found_body: "O link que você seguiu não existe ou não está mais disponível.",
    bad_request_title: "Não conseguimos ler o formulário",
    too_large_body: "O formulário enviado é grande demais.",
    unavailable_title: "Serviço indisponível",
    unavailable_body: "Tivemos um problema temporário. Tente novamente em instantes.",
    gateway_error_title: "O meio de pagamento não respondeu",
    gateway_error_body: "Seus dados estão salvos. Tente novamente em instantes; não será preciso digitá-los de novo.",
    saved_title: "Seus dados estão seguros",
    saved_body: "Não conseguimos abrir o pagamento agora. Tente novamente em instantes; não será preciso digitar seus dados de novo.",
    link_invalid_title: "Este link não é mais válido",
    link_invalid_body: "O link expirou ou está incompleto. Você pode começar de novo pela oferta.",
    errors: [
        "Este campo é obrigatório.",
        "Muito curto.",
        "Muito longo.",
        "Digite um e-mail válido, ex. nome@exemplo.com.",
        "Digite um número de telefone válido.",
        "Contém caracteres não permitidos.",
        "Digite um número de documento válido.",
    ],
};

static EN: Texts = Texts {
    name: "Full name",
    email: "Email",
    phone: "Mobile phone",
    phone_hint: "Include the country code if abroad, e.g. +1 415 555 0100",
    tax_id: "Tax ID",
    pay: "Continue to payment",
    secure_note:
        "We will take you to the secure payment page with your details filled in. Your card never passes through here.",
    fix_errors: "Please check the highlighted fields.",
    product: "Product",
    amount: "Total",
    reference: "Reference",
    paid_title: "Payment received!",
    paid_body: "Thank you. We sent the confirmation to your email.",
    declined_title: "The payment was not approved",
    declined_body: "You were not charged. You can try again with another payment method.",
    retry: "Try again",
    pending_title: "We are confirming your payment",
    pending_body: "This can take a few minutes. This page refreshes by itself.",
    not_found_title: "Page not found",
    not_found_body: "The link you followed does not exist or is no longer available.",
    bad_request_title: "We could not read the form",
    too_large_body: "The submitted form is too large.",
    unavailable_title: "Service unavailable",
    unavailable_body: "We had a temporary problem. Please try again in a moment.",
    gateway_error_title: "The payment provider did not respond",
    gateway_error_body: "Your details are saved. Please try again in a moment; you will not need to type them again.",
    saved_title: "Your details are safe",
    saved_body: "We could not open the payment page just now. Please try again in a moment; you will not need to type your details again.",
    link_invalid_title: "This link is no longer valid",
    link_invalid_body: "The link expired or is incomplete. You can start again from the offer.",
    errors: [
        "This field is required.",
        "Too short.",
        "Too long.",
        "Enter a valid email, e.g. name@example.com.",
        "Enter a valid phone number.",
        "Contains characters that are not allowed.",
        "Enter a valid ID number.",
    ],
};
