//! Pipedrive: journeys and failure paths against a fake that behaves like Pipedrive.
