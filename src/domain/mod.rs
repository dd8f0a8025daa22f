//! Pure domain layer: value types and rules with no I/O, so every decision
//! about money, contacts, payment state and resume links is unit-testable.

pub mod api_token;
pub mod contact;
pub mod edge;
pub mod event;
pub mod followup;
pub mod form_token;
pub mod forwarded;
pub mod lang;
pub mod lead;
pub mod local_time;
pub mod localized;
pub mod money;
pub mod offer;
pub mod payment;
pub mod payment_link;
pub mod phone_region;
pub mod resume;
pub mod reversal;
pub mod signing;
pub mod trust;

pub use contact::{ContactError, Email, PersonName, Phone, TaxId};
pub use lang::Lang;
pub use localized::{LocalizedError, LocalizedText};
pub use money::{Currency, Money, MoneyError};
pub use payment::{PaymentStatus, Transition};
pub use resume::{ResumeClaims, ResumeError};
pub use reversal::{DisputeStage, Reversal, Standing};
