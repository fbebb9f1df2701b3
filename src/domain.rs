//! Pure business rules: no I/O, no diesel, no actix. Each module has its unit tests beside it.

pub mod calendar;
pub mod customer;
pub mod geo;
pub mod login;
pub mod money;
pub mod org;
pub mod paging;
pub mod pipeline;
pub mod reminders;
pub mod user;
pub mod validate;
pub mod visit;
