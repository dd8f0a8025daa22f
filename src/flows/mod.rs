//! Use cases that tie the store, the queue, the CRM and the gateways together. Web
//! handlers and jobs call these; the rules themselves live in `domain/`.

pub mod api_tokens;
pub mod checkout;
pub mod crm_trigger;
pub mod link_view;
pub mod payment;
pub mod payment_link;
pub mod reconcile;
pub mod returns;
pub mod webhook;
