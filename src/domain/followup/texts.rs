//! Every built-in follow-up text, customer- and sales-facing, one table per language.
//! A configured step overrides its own subject and body; everything else is said here.

use std::sync::LazyLock;

use super::template::Template;
use super::{Localized, StepKind};
use crate::domain::Lang;

/// The labels of a task body's lines, so job code that writes its own lines says the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    pub name: &'static str,
    pub email: &'static str,
    pub phone: &'static str,
    pub call: &'static str,
    pub whatsapp: &'static str,
    pub offer: &'static str,
    pub amount: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub attempt_started: &'static str,
    pub attempts: &'static str,
    pub history: &'static str,
    pub source: &'static str,
    pub campaign: &'static str,
    pub resume_payment: &'static str,
}

const ES: Labels = Labels {
    name: "Nombre",
    email: "Correo",
    phone: "Teléfono",
    call: "Llamar",
    whatsapp: "WhatsApp",
    offer: "Oferta",
    amount: "Monto",
    status: "Estado del pago",
    reason: "Motivo",
    attempt_started: "Intento iniciado",
    attempts: "Intentos",
    history: "Historial",
    source: "Fuente",
    campaign: "Campaña",
    resume_payment: "Retomar el pago",
};

const PT_BR: Labels = Labels {
    name: "Nome",
    email: "E-mail",
    phone: "Telefone",
    call: "Ligar",
    whatsapp: "WhatsApp",
    offer: "Oferta",
    amount: "Valor",
    status: "Status do pagamento",
    reason: "Motivo",
    attempt_started: "Tentativa iniciada",
    attempts: "Tentativas",
    history: "Histórico",
    source: "Origem",
    campaign: "Campanha",
    resume_payment: "Retomar o pagamento",
};

const EN: Labels = Labels {
    name: "Name",
    email: "Email",
    phone: "Phone",
    call: "Call",
    whatsapp: "WhatsApp",
    offer: "Offer",
    amount: "Amount",
    status: "Payment status",
    reason: "Reason",
    attempt_started: "Attempt started",
    attempts: "Attempts",
    history: "History",
    source: "Source",
    campaign: "Campaign",
    resume_payment: "Resume payment",
};

pub fn labels(lang: Lang) -> &'static Labels {
    match lang {
        Lang::Es => &ES,
        Lang::PtBr => &PT_BR,
        Lang::En => &EN,
    }
}

/// One language's built-in texts, in template syntax.
struct Raw {
    call_subject: &'static str,
    task_subject: &'static str,
    declined_subject: &'static str,
    email_subject: &'static str,
    email_body: &'static str,
    receipt_subject: &'static str,
    receipt_body: &'static str,
    whatsapp: &'static str,
    paid_close_note: &'static str,
    abandoned_stage_note: &'static str,
    /// "hace {ago}": where the language puts the duration.
    ago: &'static str,
}

const RAW_ES: Raw = Raw {
    call_subject: "Llamar a {name}: pago no completado ({offer})",
    task_subject: "Seguimiento a {name}: pago no completado ({offer})",
    declined_subject: "Llamar a {name}: pago rechazado ({offer})",
    email_subject: "{first_name}, tu compra de {offer} te espera",
    email_body: "Hola {first_name}:\n\nVimos que no terminaste el pago de {offer} ({amount}). Puedes \
                 retomarlo aquí, con tus datos ya cargados:\n\n{resume_link}\n\nSi tuviste algún \
                 problema, responde este correo y te ayudamos.",
    receipt_subject: "Recibimos tu pago de {offer}",
    receipt_body: "Hola {first_name}:\n\nRecibimos tu pago de {amount} por {offer}. ¡Gracias por tu \
                   compra!\n\nReferencia: {reference}\n\nSi tienes alguna pregunta, responde este correo.",
    whatsapp: "Hola {first_name}, te escribo por tu compra de {offer}. ¿Te puedo ayudar a completar el pago?",
    paid_close_note: "Pagó {amount} por {offer}: tareas de seguimiento cerradas",
    abandoned_stage_note: "Sin pago después del último seguimiento ({attempts} intento(s)): trato movido a abandonados",
    ago: "hace {ago}",
};

const RAW_PT_BR: Raw = Raw {
    call_subject: "Ligar para {name}: pagamento não concluído ({offer})",
    task_subject: "Acompanhar {name}: pagamento não concluído ({offer})",
    declined_subject: "Ligar para {name}: pagamento recusado ({offer})",
    email_subject: "{first_name}, sua compra de {offer} está esperando",
    email_body: "Olá, {first_name}!\n\nVimos que você não concluiu o pagamento de {offer} ({amount}). \
                 Você pode retomá-lo aqui, com seus dados já preenchidos:\n\n{resume_link}\n\nSe teve \
                 algum problema, responda este e-mail que ajudamos.",
    receipt_subject: "Recebemos seu pagamento de {offer}",
    receipt_body: "Olá, {first_name}!\n\nRecebemos seu pagamento de {amount} por {offer}. Obrigado pela \
                   compra!\n\nReferência: {reference}\n\nSe tiver alguma dúvida, responda este e-mail.",
    whatsapp: "Olá, {first_name}! Estou escrevendo sobre sua compra de {offer}. Posso ajudar a concluir o pagamento?",
    paid_close_note: "Pagou {amount} por {offer}: tarefas de acompanhamento encerradas",
    abandoned_stage_note:
        "Sem pagamento após o último acompanhamento ({attempts} tentativa(s)): negócio movido para abandonados",
    ago: "há {ago}",
};

const RAW_EN: Raw = Raw {
    call_subject: "Call {name}: payment not completed ({offer})",
    task_subject: "Follow up with {name}: payment not completed ({offer})",
    declined_subject: "Call {name}: payment declined ({offer})",
    email_subject: "{first_name}, your {offer} order is waiting",
    email_body: "Hi {first_name},\n\nWe noticed you did not finish paying for {offer} ({amount}). You can \
                 pick up where you left off, with your details filled in:\n\n{resume_link}\n\nIf something \
                 went wrong, reply to this email and we will help.",
    receipt_subject: "We received your payment for {offer}",
    receipt_body: "Hi {first_name},\n\nWe received your payment of {amount} for {offer}. Thank you for \
                   your purchase!\n\nReference: {reference}\n\nIf you have any questions, reply to this email.",
    whatsapp: "Hi {first_name}, I'm writing about your {offer} purchase. Can I help you complete the payment?",
    paid_close_note: "Paid {amount} for {offer}: follow-up tasks closed",
    abandoned_stage_note: "No payment after the last follow-up ({attempts} attempt(s)): deal moved to abandoned",
    ago: "{ago} ago",
};

fn raw(lang: Lang) -> &'static Raw {
    match lang {
        Lang::Es => &RAW_ES,
        Lang::PtBr => &RAW_PT_BR,
        Lang::En => &RAW_EN,
    }
}

/// Everything sales needs on one task, one fact a line; `first` leads (the decline reason).
fn task_body(lang: Lang, first: &[(&str, &str)]) -> String {
    let l = labels(lang);
    let mut lines: Vec<(&str, &str)> = first.to_vec();
    lines.extend([
        (l.name, "{name}"),
        (l.email, "{email}"),
        (l.phone, "{phone}"),
        (l.call, "{tel_link}"),
        (l.whatsapp, "{whatsapp_link}"),
        (l.offer, "{offer}"),
        (l.amount, "{amount}"),
        (l.attempt_started, raw(lang).ago),
        (l.attempts, "{attempts}"),
        (l.source, "{utm_source}"),
        (l.campaign, "{utm_campaign}"),
        (l.resume_payment, "{resume_link}"),
    ]);
    let mut body: Vec<String> = lines.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
    // Last: one line per attempt, so it reads as a block under its label.
    body.push(format!("{}:\n{{history}}", l.history));
    body.join("\n")
}

/// The built-in texts, parsed once; a unit test parses them all, so `expect` cannot fire.
struct Parsed {
    subject: [Localized; 3],
    body: [Localized; 3],
    declined_subject: Localized,
    declined_body: Localized,
    receipt_subject: Localized,
    receipt_body: Localized,
    whatsapp: Localized,
    paid_close_note: Localized,
    abandoned_stage_note: Localized,
}

fn parsed(text: impl Fn(Lang) -> String) -> Localized {
    Localized::from_fn(|lang| Template::parse(&text(lang)).expect("built-in follow-up text parses"))
}

static TEXTS: LazyLock<Parsed> = LazyLock::new(|| {
    let status = |lang: Lang| {
        let l = labels(lang);
        [(l.status, "{status}"), (l.reason, "{reason}")]
    };
    Parsed {
        subject: [
            parsed(|l| raw(l).call_subject.into()),
            parsed(|l| raw(l).task_subject.into()),
            parsed(|l| raw(l).email_subject.into()),
        ],
        body: [
            parsed(|l| task_body(l, &status(l)[..1])),
            parsed(|l| task_body(l, &status(l)[..1])),
            parsed(|l| raw(l).email_body.into()),
        ],
        declined_subject: parsed(|l| raw(l).declined_subject.into()),
        declined_body: parsed(|l| task_body(l, &status(l)[1..])),
        receipt_subject: parsed(|l| raw(l).receipt_subject.into()),
        receipt_body: parsed(|l| raw(l).receipt_body.into()),
        whatsapp: parsed(|l| raw(l).whatsapp.into()),
        paid_close_note: parsed(|l| raw(l).paid_close_note.into()),
        abandoned_stage_note: parsed(|l| raw(l).abandoned_stage_note.into()),
    }
});

fn kind_index(kind: StepKind) -> usize {
    match kind {
        StepKind::Call => 0,
        StepKind::Task => 1,
        StepKind::Email => 2,
    }
}

/// The subject of an abandoned-checkout step of this kind (an Email step's goes to the customer).
pub fn step_subject(kind: StepKind) -> &'static Localized {
    &TEXTS.subject[kind_index(kind)]
}

/// The body of an abandoned-checkout step: every fact sales needs, or for an Email step a
/// friendly note to the customer with the resume link.
pub fn step_body(kind: StepKind) -> &'static Localized {
    &TEXTS.body[kind_index(kind)]
}

/// The subject of the step a decline opens, when it is a call or a task.
pub fn declined_subject() -> &'static Localized {
    &TEXTS.declined_subject
}

/// The body of the decline's step: the reason first, then the same facts as an abandoned step.
pub fn declined_body() -> &'static Localized {
    &TEXTS.declined_body
}

/// The payment confirmation email's subject (`receipt_email = true`).
pub fn receipt_subject(lang: Lang) -> &'static Template {
    TEXTS.receipt_subject.get(lang)
}

/// The payment confirmation email's body: paid {amount} for {offer}.
pub fn receipt_body(lang: Lang) -> &'static Template {
    TEXTS.receipt_body.get(lang)
}

/// The message a `{whatsapp_link}` opens prefilled, from the seller to the customer.
pub fn whatsapp_message(lang: Lang) -> &'static Template {
    TEXTS.whatsapp.get(lang)
}

/// The note on the deal when leadgate closes its follow-up tasks because the lead paid.
pub fn paid_close_note(lang: Lang) -> &'static Template {
    TEXTS.paid_close_note.get(lang)
}

/// The note on the deal when it moves to the `after_last_step` stage.
pub fn abandoned_stage_note(lang: Lang) -> &'static Template {
    TEXTS.abandoned_stage_note.get(lang)
}
