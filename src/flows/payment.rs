//! Applying what a gateway says about an attempt, from the return redirect, through the
//! one state machine in `domain::payment`. The applying itself is `jobs::settle`, shared
//! with the webhook and reconciliation jobs, and re-exported here for the web handlers.

pub use crate::jobs::settle::{apply, Source};
