//! What a follow-up's templates can show about the lead and their attempts, rendered
//! once per step in the lead's language.

use crate::domain::followup::{texts, Var};
use crate::domain::lead::Attempt;

use super::crm_sync::Subject;

pub struct Facts<'a> {
    s: &'a Subject<'a>,
    history: Vec<&'a Attempt>,
    link: &'a str,
    now: i64,
}

impl<'a> Facts<'a> {
    /// `history`: every attempt of the lead; only this offer's are shown.
    pub fn new(s: &'a Subject<'a>, history: &'a [Attempt], link: &'a str, now: i64) -> Self {
        let history = history
            .iter()
            .filter(|a| a.offer_slug == s.attempt.offer_slug)
            .collect();
        Facts { s, history, link, now }
    }

    pub fn value(&self, v: Var) -> String {
        let s = self.s;
        let c = &s.lead.contact;
        let lang = s.lead.lang;
        let or_dash = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "-".into());
        match v {
            Var::Name => c.name.to_string(),
            Var::FirstName => c
                .name
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            Var::Email => c.email.to_string(),
            Var::Phone => c.phone.to_string(),
            Var::TelLink => format!("tel:{}", c.phone),
            Var::WhatsappLink => self.whatsapp(),
            Var::Offer => s.offer.title.get(lang).to_owned(),
            Var::Amount => s.attempt.amount.format(lang),
            Var::Status => s.attempt.status.to_string(),
            Var::Reason => or_dash(&s.attempt.status_detail),
            Var::Attempts => self.history.len().max(1).to_string(),
            Var::History => self.history_lines(),
            Var::Ago => ago(self.now - s.attempt.created_at),
            Var::UtmSource => or_dash(&s.lead.utm.source),
            Var::UtmCampaign => or_dash(&s.lead.utm.campaign),
            Var::ResumeLink => self.link.to_owned(),
            Var::Reference => s.attempt.id.clone(),
        }
    }

    /// `https://wa.me/<E.164 digits>` with the localized opening message prefilled.
    fn whatsapp(&self) -> String {
        let digits: String = self
            .s
            .lead
            .contact
            .phone
            .to_string()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        // The message may show anything but the link itself.
        let message = texts::whatsapp_message(self.s.lead.lang).render(&|v| match v {
            Var::WhatsappLink => String::new(),
            other => self.value(other),
        });
        let text: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
        format!("https://wa.me/{digits}?text={text}")
    }

    /// One line per attempt: when (in the policy's time zone), status and the reason.
    fn history_lines(&self) -> String {
        let tz = self.s.offer.followup.hours.timezone();
        self.history
            .iter()
            .map(|a| {
                let at = crate::domain::local_time::format(a.created_at, self.s.lead.lang, tz);
                match &a.status_detail {
                    Some(d) => format!("{at} · {} ({d})", a.status),
                    None => format!("{at} · {}", a.status),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A short, language-neutral age: `45 min`, `3 h 10 min`, `2 d 4 h`.
fn ago(ms: i64) -> String {
    let min = ms.max(0) / 60_000;
    let (d, h, m) = (min / 1440, (min / 60) % 24, min % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) if m == 0 => format!("{h} h"),
        (0, _) => format!("{h} h {m} min"),
        _ if h == 0 => format!("{d} d"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(super::ago(-5), "0 min");
        assert_eq!(super::ago(45 * 60_000), "45 min");
        assert_eq!(super::ago(3 * 3_600_000), "3 h");
        assert_eq!(super::ago(190 * 60_000), "3 h 10 min");
        assert_eq!(super::ago(2 * 86_400_000 + 4 * 3_600_000 + 59_000), "2 d 4 h");
        assert_eq!(super::ago(86_400_000), "1 d");
    }
}
