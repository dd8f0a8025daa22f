//! The mailer against the in-process SMTP sink: what arrives, and how refusals are sorted.

use leadgate::config::email::{build, RawEmail};
use leadgate::domain::Lang;
use leadgate::email::{Action, EmailError, Mailer, Outgoing};

use crate::smtp_sink::{Received, SmtpSink};

fn mailer(port: u16) -> Mailer {
    let toml_text = format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Acme Ventas <ventas@acme.example>\"\nreply_to = \"soporte@acme.example\"\ntimeout = \"3s\""
    );
    let raw: RawEmail = toml::from_str(&toml_text).unwrap();
    let settings = build(Some(raw), &|_| None).unwrap().unwrap();
    Mailer::new(&settings).unwrap()
}

const ID: &str = "<lg-recovery-01j9k2.1@leadgate.example>";

fn recovery() -> Outgoing {
    Outgoing {
        message_id: ID.into(),
        to_name: "João Núñez".into(),
        to_email: "joao@cliente.example".into(),
        lang: Lang::PtBr,
        subject: "Seu pedido: ação, ñandú e coração".into(),
        text: "Olá João,\n\nSeu pedido ainda está aberto.\nFalta só o pagamento.\n\nObrigado!\n.acme.example".into(),
        action: Some(Action {
            label: "Concluir pagamento".into(),
            url: "https://pay.acme.example/r/tok?a=1&b=2".into(),
        }),
        unsubscribe: Some("https://pay.acme.example/u/tok".into()),
    }
}

async fn send_one(m: &Outgoing) -> Received {
    let sink = SmtpSink::start().await;
    mailer(sink.port()).send(m).await.unwrap();
    let mut got = sink.messages();
    assert_eq!(got.len(), 1);
    got.remove(0)
}

fn headers_of(r: &Received) -> String {
    let raw = String::from_utf8_lossy(&r.raw);
    raw.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_message_arrives_with_both_parts_and_its_headers() {
    let got = send_one(&recovery()).await;
    assert!(got.acknowledged);
    assert_eq!(got.envelope_from, "ventas@acme.example");
    assert_eq!(got.envelope_to, ["joao@cliente.example"]);
    assert_eq!(got.content_types, ["multipart/alternative", "text/plain", "text/html"]);
    assert_eq!(got.message_id.as_deref(), Some(ID));
    assert_eq!(got.subject.as_deref(), Some("Seu pedido: ação, ñandú e coração"));
    assert_eq!(got.to_name.as_deref(), Some("João Núñez"));
    assert_eq!(got.to_email.as_deref(), Some("joao@cliente.example"));
    assert_eq!(got.content_language.as_deref(), Some("pt-BR"));
    assert_eq!(
        got.list_unsubscribe.as_deref(),
        Some("<https://pay.acme.example/u/tok>")
    );
    assert_eq!(got.list_unsubscribe_post.as_deref(), Some("List-Unsubscribe=One-Click"));
    let headers = headers_of(&got);
    assert!(headers.is_ascii(), "headers must be encoded: {headers}");
    assert!(headers.contains("\r\nReply-To: soporte@acme.example\r\n"), "{headers}");

    let text = got.text.unwrap();
    for want in [
        // The last line starts with a dot: stuffed by lettre, unstuffed by the sink.
        "Olá João,\n\nSeu pedido ainda está aberto.\nFalta só o pagamento.\n\nObrigado!\n.acme.example\n",
        "Concluir pagamento:\nhttps://pay.acme.example/r/tok?a=1&b=2",
        "Não receber mais estes lembretes:\nhttps://pay.acme.example/u/tok",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let html = got.html.unwrap();
    for want in [
        "<html lang=\"pt-BR\">",
        "Seu pedido ainda está aberto.<br>Falta só o pagamento.</p>",
        "href=\"https://pay.acme.example/r/tok?a=1&#38;b=2\"",
        ">Concluir pagamento</a>",
        "Se o botão não funcionar, copie este link no seu navegador:",
        "href=\"https://pay.acme.example/u/tok\"",
        "Não receber mais estes lembretes</a>",
    ] {
        assert!(html.contains(want), "{want:?} in {html}");
    }
}

#[tokio::test]
async fn html_escapes_what_the_caller_wrote_and_a_receipt_has_no_unsubscribe() {
    let m = Outgoing {
        to_name: "<b>Ana</b>".into(),
        lang: Lang::Es,
        subject: "Recibo".into(),
        text: "Hola <b>Ana</b> & \"amigos\"".into(),
        action: Some(Action {
            label: "<script>x</script>".into(),
            url: "https://pay.acme.example/recibo".into(),
        }),
        unsubscribe: None,
        ..recovery()
    };
    let got = send_one(&m).await;
    assert_eq!(got.to_name.as_deref(), Some("<b>Ana</b>"));
    assert_eq!(got.content_language.as_deref(), Some("es"));
    assert_eq!((got.list_unsubscribe, got.list_unsubscribe_post), (None, None));
    let html = got.html.unwrap();
    assert!(
        html.contains("Hola &#60;b&#62;Ana&#60;/b&#62; &#38; &#34;amigos&#34;"),
        "{html}"
    );
    assert!(!html.contains("<b>") && !html.contains("<script>"), "{html}");
    assert!(html.contains("<html lang=\"es\">"), "{html}");
    assert!(html.contains("Si el botón no funciona"), "{html}");
    assert!(!html.contains("No recibir más"), "{html}");
    let text = got.text.unwrap();
    assert!(text.contains("Hola <b>Ana</b> & \"amigos\""), "{text}");
    assert!(!text.contains("-- \n"), "{text}");
}

#[tokio::test]
async fn english_chrome_for_english_customers() {
    let got = send_one(&Outgoing {
        lang: Lang::En,
        ..recovery()
    })
    .await;
    assert_eq!(got.content_language.as_deref(), Some("en"));
    let html = got.html.unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("If the button does not work"), "{html}");
    assert!(got.text.unwrap().contains("Unsubscribe from these reminders:"));
}

#[tokio::test]
async fn a_4xx_reply_is_transient_and_the_retry_goes_through() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(sink.port());
    sink.fail_next(1, 451);
    let err = mailer.send(&recovery()).await.unwrap_err();
    assert!(matches!(err, EmailError::Transient(_)), "{err:?}");
    assert!(sink.messages().is_empty());
    mailer.send(&recovery()).await.unwrap();
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_5xx_reply_to_the_data_or_the_recipient_is_permanent() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(sink.port());
    sink.fail_next(1, 550);
    let err = mailer.send(&recovery()).await.unwrap_err();
    assert!(matches!(err, EmailError::Permanent(_)), "{err:?}");
    sink.fail_rcpt_next(1, 550);
    let err = mailer.send(&recovery()).await.unwrap_err();
    assert!(matches!(err, EmailError::Permanent(_)), "{err:?}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = mailer(port).send(&recovery()).await.unwrap_err();
    assert!(matches!(err, EmailError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn a_hang_up_after_the_data_may_have_delivered_it() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(sink.port());
    sink.drop_after_data_next();
    let err = mailer.send(&recovery()).await.unwrap_err();
    assert!(matches!(err, EmailError::Unknown(_)), "{err:?}");
    let got = sink.messages();
    let seen: Vec<_> = got.iter().map(|r| (r.acknowledged, r.message_id.as_deref())).collect();
    assert_eq!(seen, [(false, Some(ID))], "the relay had the whole message");
}

#[tokio::test]
async fn a_hang_up_before_the_data_is_transient() {
    let sink = SmtpSink::start().await;
    sink.fail_rcpt_next(1, 421);
    let err = mailer(sink.port()).send(&recovery()).await.unwrap_err();
    assert!(matches!(err, EmailError::Transient(_)), "{err:?}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_unusable_address_is_permanent_without_connecting() {
    let sink = SmtpSink::start().await;
    let mailer = mailer(sink.port());
    let bad = Outgoing {
        to_email: "joao@".into(),
        ..recovery()
    };
    let err = mailer.send(&bad).await.unwrap_err();
    assert!(matches!(err, EmailError::Permanent(_)), "{err:?}");
    assert_eq!(sink.connections(), 0);
}
