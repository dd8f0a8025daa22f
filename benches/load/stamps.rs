//! Server-side instants for event-to-CRM latency: a tracing layer that timestamps the
//! `webhook stored` event `flows::webhook` logs right after the inbox row commits, per
//! event id. Installed as the bench process's subscriber; only the in-process app logs to it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

pub type Stored = Arc<Mutex<HashMap<String, Instant>>>;

static STORED: OnceLock<Stored> = OnceLock::new();

/// Installs the layer (once per process) and returns the map it fills.
pub fn install() -> Stored {
    STORED
        .get_or_init(|| {
            let map = Stored::default();
            let _ =
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(StoreStamp(map.clone())));
            map
        })
        .clone()
}

struct StoreStamp(Stored);

#[derive(Default)]
struct Fields {
    message: Option<String>,
    event_id: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            // `%event_id` arrives as a Display value, whose Debug is the plain text.
            "event_id" => self.event_id = Some(format!("{value:?}").trim_matches('"').to_owned()),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for StoreStamp {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let at = Instant::now();
        if event.metadata().level() != &tracing::Level::INFO {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.as_deref() != Some("webhook stored") {
            return;
        }
        if let (Some(id), Ok(mut map)) = (f.event_id, self.0.lock()) {
            map.insert(id, at);
        }
    }
}
