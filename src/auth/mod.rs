//! Who is calling: API keys and UI-issued JWTs, and what they may touch.

mod access;
pub mod api_key;
pub mod jwt;
mod principal;

pub use access::authorize_project;
pub use principal::{Authenticator, Principal};
