//! An `Outgoing` as a MIME message. lettre writes, encodes and folds the headers; we only
//! check what it would pass through unchanged (URLs, the Message-ID).

use askama::Template;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use url::Url;

use super::texts::{texts, Texts};
use super::{EmailError, Outgoing};

/// A URL cannot be folded, and header lines stop at 998 octets (RFC 5322).
const MAX_URL: usize = 900;

#[derive(Template)]
#[template(path = "email/message.html")]
struct Html<'a> {
    lang: &'static str,
    subject: &'a str,
    paragraphs: &'a [Vec<&'a str>],
    button: Option<&'a Button<'a>>,
    unsubscribe: Option<&'a str>,
    t: &'static Texts,
}

struct Button<'a> {
    label: String,
    url: &'a str,
}

pub(super) fn message(o: &Outgoing, from: &Mailbox, reply_to: Option<&Mailbox>) -> Result<Message, EmailError> {
    check_message_id(&o.message_id)?;
    let email: Address = o
        .to_email
        .trim()
        .parse()
        .map_err(|e| EmailError::Permanent(format!("to_email is not an address: {e}")))?;
    let name = one_line(&o.to_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), email);
    let action_url = o.action.as_ref().map(|a| web_url("action", &a.url)).transpose()?;
    let button = o.action.as_ref().zip(action_url.as_ref()).map(|(a, url)| Button {
        label: one_line(&a.label),
        url: url.as_str(),
    });
    let unsubscribe = o
        .unsubscribe
        .as_deref()
        .map(|u| web_url("unsubscribe", u))
        .transpose()?;
    let unsubscribe = unsubscribe.as_ref().map(Url::as_str);

    let subject = one_line(&o.subject);
    let body = clean(&o.text);
    let paragraphs = paragraphs(&body);
    let t = texts(o.lang);
    let html = Html {
        lang: o.lang.code(),
        subject: &subject,
        paragraphs: &paragraphs,
        button: button.as_ref(),
        unsubscribe,
        t,
    }
    .render()
    .map_err(|e| EmailError::Permanent(format!("rendering the HTML part: {e}")))?;
    let text = plain(&paragraphs, button.as_ref(), unsubscribe, t);

    let mut b = Message::builder()
        .message_id(Some(o.message_id.clone()))
        .from(from.clone())
        .to(to)
        .subject(subject)
        .raw_header(header("Content-Language", o.lang.code().to_owned()));
    if let Some(r) = reply_to {
        b = b.reply_to(r.clone());
    }
    if let Some(u) = unsubscribe {
        // RFC 8058: the POST lets mail providers unsubscribe in one click without a
        // GET that link scanners would trigger.
        b = b
            .raw_header(header("List-Unsubscribe", format!("<{u}>")))
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()));
    }
    b.multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| EmailError::Permanent(format!("building the message: {e}")))
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

fn plain(paragraphs: &[Vec<&str>], button: Option<&Button>, unsubscribe: Option<&str>, t: &Texts) -> String {
    let mut blocks: Vec<String> = paragraphs.iter().map(|p| p.join("\n")).collect();
    if let Some(b) = button {
        blocks.push(format!("{}:\n{}", b.label, b.url));
    }
    if let Some(u) = unsubscribe {
        // "-- " is the signature separator: clients show what follows as a footer.
        blocks.push(format!("-- \n{}:\n{u}", t.unsubscribe));
    }
    let mut text = blocks.join("\n\n");
    text.push('\n');
    text
}

/// Blank lines separate paragraphs; the lines inside one are kept.
fn paragraphs(text: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    let mut current = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Line breaks normalised to `\n`; other control characters dropped.
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}

/// For headers and labels: any run of whitespace or control characters becomes one space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn web_url(what: &str, text: &str) -> Result<Url, EmailError> {
    match Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.as_str().len() <= MAX_URL => Ok(u),
        Ok(_) => Err(EmailError::Permanent(format!(
            "{what} URL must be http(s) and at most {MAX_URL} characters"
        ))),
        Err(e) => Err(EmailError::Permanent(format!("{what} URL: {e}"))),
    }
}

/// `<left@right>` in dot-atom characters: what lettre would otherwise write as given.
fn check_message_id(id: &str) -> Result<(), EmailError> {
    let atom = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
    };
    let ok = id.len() <= 250
        && id
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .and_then(|s| s.split_once('@'))
            .is_some_and(|(left, right)| atom(left) && atom(right));
    if ok {
        Ok(())
    } else {
        Err(EmailError::Permanent(format!("message_id {id:?} is not <left@right>")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_on_blank_lines_only() {
        let body = clean("Hola Ana,\r\n\r\nTu pedido\nsigue abierto. \n \n\n\nGracias\u{0}");
        assert_eq!(
            paragraphs(&body),
            vec![vec!["Hola Ana,"], vec!["Tu pedido", "sigue abierto."], vec!["Gracias"]]
        );
    }

    #[test]
    fn headers_get_one_line() {
        assert_eq!(one_line("  Tu pedido\r\nBcc: x@y\t está "), "Tu pedido Bcc: x@y está");
    }

    #[test]
    fn message_ids_must_be_dot_atoms_in_brackets() {
        for good in ["<lg-01j9.recovery.1@leadgate.example>", "<a@b>"] {
            assert!(check_message_id(good).is_ok(), "{good}");
        }
        for bad in [
            "lg-1@host",
            "<lg-1>",
            "<@host>",
            "<a@b@c>",
            "<a b@c>",
            "<a@b>\r\nBcc: x",
            "<á@b>",
        ] {
            assert!(check_message_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_web_urls_of_header_size() {
        assert!(web_url("action", "https://acme.example/r/abc").is_ok());
        assert!(web_url("action", "javascript:alert(1)").is_err());
        assert!(web_url("action", "/relative").is_err());
        assert!(web_url("action", &format!("https://acme.example/{}", "a".repeat(MAX_URL))).is_err());
    }
}
