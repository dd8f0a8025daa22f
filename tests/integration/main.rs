//! Integration tests: the real app over HTTP, on SQLite and (when configured) PostgreSQL.

mod support;

mod bad_input;
mod journeys;
mod operators;
mod resilience;
mod webhooks;
