//! Follow-up texts with `{placeholder}`s: parsed once at start-up so a typo fails the
//! configuration, not a task at 3 a.m.

use std::fmt;

/// A fact a follow-up text can show, written `{snake_case}` in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    Name,
    FirstName,
    Email,
    Phone,
    TelLink,
    WhatsappLink,
    Offer,
    Amount,
    Status,
    Reason,
    Attempts,
    History,
    Ago,
    UtmSource,
    UtmCampaign,
    ResumeLink,
    Reference,
}

impl Var {
    pub const ALL: [Var; 17] = [
        Var::Name,
        Var::FirstName,
        Var::Email,
        Var::Phone,
        Var::TelLink,
        Var::WhatsappLink,
        Var::Offer,
        Var::Amount,
        Var::Status,
        Var::Reason,
        Var::Attempts,
        Var::History,
        Var::Ago,
        Var::UtmSource,
        Var::UtmCampaign,
        Var::ResumeLink,
        Var::Reference,
    ];

    /// The name between the braces.
    pub fn as_str(&self) -> &'static str {
        match self {
            Var::Name => "name",
            Var::FirstName => "first_name",
            Var::Email => "email",
            Var::Phone => "phone",
            Var::TelLink => "tel_link",
            Var::WhatsappLink => "whatsapp_link",
            Var::Offer => "offer",
            Var::Amount => "amount",
            Var::Status => "status",
            Var::Reason => "reason",
            Var::Attempts => "attempts",
            Var::History => "history",
            Var::Ago => "ago",
            Var::UtmSource => "utm_source",
            Var::UtmCampaign => "utm_campaign",
            Var::ResumeLink => "resume_link",
            Var::Reference => "reference",
        }
    }

    /// What the placeholder shows, one line, for the README's table.
    pub fn describe(&self) -> &'static str {
        match self {
            Var::Name => "the customer's full name as typed in the form",
            Var::FirstName => "the first word of the customer's name",
            Var::Email => "the customer's email",
            Var::Phone => "the customer's phone number in international format",
            Var::TelLink => "a `tel:` link that dials the customer",
            Var::WhatsappLink => "a WhatsApp link to the customer with a prefilled message",
            Var::Offer => "the offer's title",
            Var::Amount => "the attempt's amount with its currency",
            Var::Status => "the attempt's last payment status",
            Var::Reason => "the gateway's reason for the decline or failure, if it gave one",
            Var::Attempts => "how many checkout attempts the customer made for this offer",
            Var::History => "every attempt's last status and reason, one per line",
            Var::Ago => "how long ago the attempt started, e.g. `35 min`",
            Var::UtmSource => "the `utm_source` the customer arrived with",
            Var::UtmCampaign => "the `utm_campaign` the customer arrived with",
            Var::ResumeLink => "the signed link that reopens the payment with the form filled in",
            Var::Reference => "the attempt's reference, as the result page shows it to the customer",
        }
    }

    pub fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed text: literal runs and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{name}}} (valid: {})", valid_list())]
    UnknownPlaceholder { name: String },
    #[error("the `{{` at character {at} is never closed (write `{{{{` for a literal brace)")]
    Unclosed { at: usize },
    #[error("the `}}` at character {at} closes nothing (write `}}}}` for a literal brace)")]
    UnmatchedClose { at: usize },
}

fn valid_list() -> String {
    Var::ALL.iter().map(Var::to_string).collect::<Vec<_>>().join(", ")
}

/// Longest name shown back in an error: the text comes from an operator, but may be long.
const MAX_NAME_SHOWN: usize = 40;

impl Template {
    /// `{name}` placeholders; `{{` and `}}` are literal braces. Positions in errors count
    /// characters from 1.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::UnmatchedClose { at: i + 1 }),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, n)) => name.push(n),
                            None => return Err(TemplateError::Unclosed { at: i + 1 }),
                        }
                    }
                    let var = Var::from_name(&name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                        name: name.chars().take(MAX_NAME_SHOWN).collect(),
                    })?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var(var));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// Values go in verbatim: braces inside them are not read as placeholders.
    pub fn render(&self, value: &dyn Fn(Var) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&value(*v)),
            }
        }
        out
    }

    pub fn uses(&self, v: Var) -> bool {
        self.pieces.contains(&Piece::Var(v))
    }
}
