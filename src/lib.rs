//! Fieldwork: the REST back end of the customer managers' field app. See README.md and
//! `../shared/design/architecture.md` for the shape; `main.rs` is only the command line.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod push;
pub mod scheduler;
pub mod startup;
pub mod telemetry;
