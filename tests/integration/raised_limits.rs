//! `[[limits.raised]]`: the addresses it names (an office behind one NAT, a monitoring
//! host, the benchmark's client) count against their own submit rate; everyone else is
//! still held to `submit_per_ip`.

use crate::both_backends;
use crate::support::{spawn_with, Backend, Options, TestApp};

const LIMITS: &str = "[limits]\nsubmit_per_ip = \"3/1m\"\n\
    [[limits.raised]]\naddresses = [\"198.51.100.0/24\", \"2001:db8::1\"]\nsubmit_per_ip = \"100/1m\"\n\
    [proxy]\ntrusted = [\"127.0.0.1\"]\n";

fn with(toml: &str) -> Options {
    Options {
        toml: toml.to_owned(),
        ..Options::default()
    }
}

/// The statuses of `n` valid submits as the client at `ip` (seen through the trusted proxy).
async fn submits_from(app: &TestApp, ip: &str, n: usize) -> Vec<u16> {
    let token = app.form_token("/c/demo").await;
    let mut statuses = Vec::new();
    for i in 0..n {
        let email = format!("raised-{ip}-{i}@example.com").replace(':', "-");
        let res = app
            .http
            .post(app.url("/c/demo"))
            .header("x-forwarded-for", ip)
            .form(&[
                ("name", "Ana Gómez"),
                ("email", email.as_str()),
                ("phone", "3001234567"),
                ("form_token", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    statuses
}

async fn a_raised_address_gets_past_the_default_limit_and_others_do_not(backend: Backend) {
    let app = spawn_with(backend, with(LIMITS)).await;
    assert_eq!(
        submits_from(&app, "198.51.100.7", 8).await,
        [303; 8],
        "named by its range"
    );
    assert_eq!(submits_from(&app, "2001:db8::1", 5).await, [303; 5], "named alone");
    // Counted per address within the entry, like the default.
    assert_eq!(submits_from(&app, "198.51.100.8", 2).await, [303; 2]);
    assert_eq!(
        submits_from(&app, "203.0.113.9", 5).await,
        [303, 303, 303, 429, 429],
        "an address outside every entry keeps the default"
    );
    assert_eq!(app.leads().await.len(), 8 + 5 + 2 + 3);
}

/// The benchmark's case: the raised address is the peer itself, no proxy in between.
async fn the_peer_itself_can_be_raised(backend: Backend) {
    let toml = "[limits]\nsubmit_per_ip = \"2/1m\"\n[[limits.raised]]\naddresses = [\"127.0.0.1\"]\nsubmit_per_ip = \"1000/1s\"\n";
    let app = spawn_with(backend, with(toml)).await;
    // Without a trusted proxy the header is ignored: the peer, 127.0.0.1, is the client.
    assert_eq!(submits_from(&app, "203.0.113.9", 6).await, [303; 6]);
}

both_backends!(
    a_raised_address_gets_past_the_default_limit_and_others_do_not,
    the_peer_itself_can_be_raised,
);
