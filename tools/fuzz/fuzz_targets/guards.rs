//! The parsers that stand in front of everything else: form tokens with their cookie,
//! resume tokens, `X-Forwarded-For` chains and rate settings, on any bytes.
#![no_main]

use std::net::IpAddr;
use std::time::Duration;

use leadgate::config::Rate;
use leadgate::domain::form_token::{self, Rules};
use leadgate::domain::{forwarded, resume};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-key-0123456789abcdef0123456789";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let rules = Rules {
        min_fill: Duration::from_secs(2),
        ttl: Duration::from_secs(86_400),
    };
    // Nothing but a token we signed verifies.
    if form_token::verify(KEY, "c/demo", Some(a), form_token::Nonce::Sent(b), 1_700_000_000_000, rules).is_ok() {
        assert_eq!(form_token::sign(KEY, "c/demo", b, a.split('.').nth(1).and_then(|t| t.parse().ok()).unwrap_or(-1)), a);
    }
    let _ = form_token::verify(KEY, "c/demo", Some(a), form_token::Nonce::NoneButSameOrigin, 1_700_000_000_000, rules);
    let _ = resume::verify(KEY, a, 1_700_000_000);
    let proxies = ["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let peer = IpAddr::from([10, 0, 0, 1]);
    let client = forwarded::client_ip(peer, [a, b, c], &proxies);
    let untrusted = IpAddr::from([203, 0, 113, 5]);
    assert_eq!(forwarded::client_ip(untrusted, [a, b, c], &proxies), untrusted);
    let _ = client;
    let _ = Rate::parse(c);
});
