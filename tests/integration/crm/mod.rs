//! Real CRMs against fakes that behave like the vendors (wiremock), and Pipedrive's own
//! OpenAPI specs served by Prism.

mod exactly_once;
mod hubspot;
mod pipedrive;
