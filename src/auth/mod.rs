//! Who is calling: API keys and UI-issued JWTs, and what they may touch. Knows nothing of HTTP:
//! the `Principal` extractor lives in `http/`, which also maps [`AuthError`] to statuses.

mod access;
pub mod api_key;
pub mod jwt;
mod principal;

pub use access::authorize_project;
pub use principal::{bearer_token, Authenticator, Principal};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials (401).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but without the permission or role (403).
    #[error("{0}")]
    Forbidden(String),
    /// The resource is not visible to the caller: the same answer as for absence (404).
    #[error("{0}")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}
