//! The offer form as posted: any bytes as an urlencoded body, decoded the way the
//! handler does, then parsed into a contact for offers with and without a tax id.
#![no_main]

use leadgate::config::Settings;
use leadgate::domain::Lang;
use leadgate::web::checkout::CheckoutForm;
use leadgate::web::i18n::texts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(form) = serde_urlencoded::from_bytes::<CheckoutForm>(data) else {
        return;
    };
    let Ok(settings) = Settings::from_toml(OFFERS, &|_| None) else {
        return;
    };
    for (offer, lang) in settings.offers.iter().zip([Lang::Es, Lang::PtBr, Lang::En]) {
        let _ = form.parse(offer, texts(lang));
    }
});

const OFFERS: &str = r#"
[[offers]]
slug = "co"
title = "Curso"
price_minor = 19900000
currency = "COP"

[[offers]]
slug = "br"
title = "Curso"
price_minor = 29990
currency = "BRL"
ask_tax_id = true
phone_region = "BR"

[[offers]]
slug = "mx"
title = "Curso"
price_minor = 4990
currency = "MXN"
ask_tax_id = true
phone_region = "MX"
"#;
