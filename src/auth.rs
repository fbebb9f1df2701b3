//! Authentication and the caller's scope: access tokens (JWT), refresh tokens, password hashing, and the
//! `Auth` extractor. A `Caller` can only be made by loading a live session from the database, and every repo
//! function on owned data takes its `Scope`: access control lives here and nowhere else.

pub mod caller;
pub mod guard;
pub mod jwt;
pub mod password;
pub mod tokens;
