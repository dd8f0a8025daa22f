//! Integration tests: the real app over HTTP, on SQLite and (when configured) PostgreSQL.

mod support;

mod admin;
mod after_approval;
mod bad_input;
mod crm;
mod durability;
mod email;
mod faults;
mod followup_emails;
mod followups;
mod gateways;
mod guards;
mod hostile;
mod journeys;
mod languages;
mod operators;
mod process;
mod queue;
mod reconcile;
mod resilience;
mod resume;
mod returns;
mod round_robin;
mod smtp_sink;
mod vendor_tools;
mod webhooks;
