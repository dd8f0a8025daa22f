//! `[email]`: the SMTP relay customers' emails go through. The credentials come from the
//! environment only.

use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::SecretString;
use serde::Deserialize;

pub const SMTP_USERNAME: &str = "LEADGATE_SMTP_USERNAME";
pub const SMTP_PASSWORD: &str = "LEADGATE_SMTP_PASSWORD";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text throughout: only for a relay on the same machine, or tests.
    None,
    /// Plain text, then STARTTLS, which is required: no fallback to plain text.
    StartTls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
}

impl SmtpTls {
    fn parse(s: &str) -> Option<SmtpTls> {
        match s {
            "none" => Some(SmtpTls::None),
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Tls),
            _ => None,
        }
    }

    pub fn default_port(&self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// `Debug` shows the secrets as redacted (`SecretString`).
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// Bounds each step of a send: the connection and every reply.
    pub timeout: Duration,
    pub username: Option<SecretString>,
    pub password: Option<SecretString>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub host: Option<String>,
    /// Wider than `u16` so an out-of-range port gets its own line, not a TOML error.
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub timeout: Option<String>,
}

/// `None` when there is no `[email]` table; otherwise the settings or one line per problem.
pub fn build(
    raw: Option<RawEmail>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<EmailSettings>, Vec<String>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let mut errs = Vec::new();
    let host = match raw.host.as_deref().map(str::trim) {
        None | Some("") => {
            errs.push("email.host: required, e.g. \"smtp.example.com\"".to_owned());
            None
        }
        // A URL or a host with spaces would only fail later, at the first send.
        Some(h) if h.contains('/') || h.contains(char::is_whitespace) => {
            errs.push(format!(
                "email.host: {h:?} is not a host name (no scheme, path or port)"
            ));
            None
        }
        Some(h) => Some(h.to_owned()),
    };
    let tls = match raw.tls.as_deref() {
        None => SmtpTls::StartTls,
        Some(t) => SmtpTls::parse(t).unwrap_or_else(|| {
            errs.push(format!(
                "email.tls: {t:?} is not one of \"starttls\", \"tls\", \"none\""
            ));
            SmtpTls::StartTls
        }),
    };
    let port = match raw.port {
        None => tls.default_port(),
        Some(p) => u16::try_from(p).ok().filter(|p| *p != 0).unwrap_or_else(|| {
            errs.push(format!("email.port: {p} is not a port (1 to 65535)"));
            0
        }),
    };
    let from = match raw.from.as_deref() {
        None => {
            errs.push("email.from: required, e.g. \"Acme <ventas@acme.example>\"".to_owned());
            None
        }
        Some(f) => mailbox("from", f, &mut errs),
    };
    let reply_to = raw.reply_to.as_deref().and_then(|r| mailbox("reply_to", r, &mut errs));
    let timeout = match raw.timeout.as_deref().map(humantime::parse_duration) {
        None => DEFAULT_TIMEOUT,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            errs.push("email.timeout: must not be zero".to_owned());
            DEFAULT_TIMEOUT
        }
        Some(Err(e)) => {
            errs.push(format!("email.timeout: {e} (example: \"10s\")"));
            DEFAULT_TIMEOUT
        }
    };
    let secret = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let (username, password) = (secret(SMTP_USERNAME), secret(SMTP_PASSWORD));
    match (&username, &password) {
        (Some(_), None) => errs.push(format!("{SMTP_PASSWORD}: required when {SMTP_USERNAME} is set")),
        (None, Some(_)) => errs.push(format!("{SMTP_USERNAME}: required when {SMTP_PASSWORD} is set")),
        // A password over plain text would be readable by anyone on the path.
        (Some(_), Some(_)) if tls == SmtpTls::None => errs.push(format!(
            "{SMTP_PASSWORD}: not sent with email.tls = \"none\"; use \"starttls\" or \"tls\""
        )),
        _ => {}
    }
    match (host, from) {
        (Some(host), Some(from)) if errs.is_empty() => Ok(Some(EmailSettings {
            host,
            port,
            tls,
            from,
            reply_to,
            timeout,
            username: username.map(SecretString::from),
            password: password.map(SecretString::from),
        })),
        _ => Err(errs),
    }
}

fn mailbox(key: &str, text: &str, errs: &mut Vec<String>) -> Option<Mailbox> {
    match text.trim().parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            errs.push(format!("email.{key}: {text:?} is not an address ({e})"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn raw(toml_text: &str) -> Option<RawEmail> {
        Some(toml::from_str(toml_text).expect("valid TOML"))
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const MINIMAL: &str = "host = \"smtp.example.com\"\nfrom = \"Acme <ventas@acme.example>\"";

    #[test]
    fn absent_table_is_none() {
        assert!(matches!(build(None, &no_env), Ok(None)));
    }

    #[test]
    fn defaults_follow_the_tls_mode() {
        let s = build(raw(MINIMAL), &no_env).unwrap().unwrap();
        assert_eq!((s.tls, s.port, s.timeout), (SmtpTls::StartTls, 587, DEFAULT_TIMEOUT));
        assert_eq!(s.from.email.to_string(), "ventas@acme.example");
        assert_eq!(s.from.name.as_deref(), Some("Acme"));
        assert!(s.reply_to.is_none() && s.username.is_none());
        for (mode, port) in [("tls", 465), ("none", 25), ("starttls", 587)] {
            let s = build(raw(&format!("{MINIMAL}\ntls = \"{mode}\"")), &no_env)
                .unwrap()
                .unwrap();
            assert_eq!(s.port, port, "{mode}");
        }
        let s = build(raw(&format!("{MINIMAL}\nport = 2525\ntimeout = \"3s\"")), &no_env)
            .unwrap()
            .unwrap();
        assert_eq!((s.port, s.timeout), (2525, Duration::from_secs(3)));
    }

    #[test]
    fn every_bad_setting_gets_its_own_line() {
        let toml_text =
            "host = \"smtp://x\"\nport = 70000\ntls = \"ssl\"\nfrom = \"nope\"\nreply_to = \"a@\"\ntimeout = \"soon\"";
        let errs = build(raw(toml_text), &no_env).unwrap_err();
        let keys: Vec<&str> = errs.iter().filter_map(|e| e.split(':').next()).collect();
        assert_eq!(
            keys,
            [
                "email.host",
                "email.tls",
                "email.port",
                "email.from",
                "email.reply_to",
                "email.timeout"
            ],
            "{errs:?}"
        );
        let errs = build(raw("port = 0"), &no_env).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn credentials_come_in_pairs_and_never_over_plain_text() {
        let both = |k: &str| Some(if k == SMTP_USERNAME { " apikey " } else { "s3cret-pw" }.to_owned());
        let s = build(raw(MINIMAL), &both).unwrap().unwrap();
        assert_eq!(s.username.as_ref().map(|u| u.expose_secret()), Some("apikey"));
        assert!(!format!("{s:?}").contains("s3cret-pw"));

        let only_user = |k: &str| (k == SMTP_USERNAME).then(|| "apikey".to_owned());
        let errs = build(raw(MINIMAL), &only_user).unwrap_err();
        assert!(errs[0].starts_with("LEADGATE_SMTP_PASSWORD:"), "{errs:?}");

        let errs = build(raw(&format!("{MINIMAL}\ntls = \"none\"")), &both).unwrap_err();
        assert!(errs[0].starts_with("LEADGATE_SMTP_PASSWORD: not sent"), "{errs:?}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<RawEmail>("hots = \"x\"").is_err());
    }
}
