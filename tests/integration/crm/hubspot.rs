//! HubSpot: journeys and failure paths against a fake that behaves like HubSpot.
