//! Integration tests: the real app over HTTP, on SQLite and (when configured) PostgreSQL.

mod support;

mod admin;
mod after_approval;
mod api;
mod bad_input;
mod browser;
mod crm;
mod delivery;
mod durability;
mod email;
mod embed;
mod events;
mod faults;
mod followup_emails;
mod followups;
mod gateways;
mod guards;
mod hostile;
mod journeys;
mod languages;
mod operators;
mod payment_links;
mod phone;
mod process;
mod queue;
mod raised_limits;
mod reconcile;
mod resilience;
mod resume;
mod returns;
mod round_robin;
mod smtp_sink;
mod trust;
mod vendor_tools;
mod webhooks;
