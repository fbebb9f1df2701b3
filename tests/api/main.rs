//! The one integration-test binary: every test starts the real server on a random port, on SQLite and
//! (with `FIELDWORK_TEST_POSTGRES_URL`) on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod bad_input;
mod contract;
mod customers;
mod errors;
mod fake_fcm;

mod health;
mod inbox;
mod inbox_reminders;
mod opportunities_worklogs;
mod orgs_users;
mod phone_day;
mod push;
mod push_faults;
mod reminders;
mod scheduler_rules;
mod security;
mod sync;
mod tasks_notices;
mod teams_transfers;
mod visits;
