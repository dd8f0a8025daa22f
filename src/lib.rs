//! leadgate: a self-hosted lead-capture checkout. See README.md for the tour.

pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod crm;
pub mod domain;
pub mod email;
pub mod flows;
pub mod gateways;
pub mod jobs;
pub mod limits;
pub mod links;
pub mod metrics;
pub mod outbound;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
