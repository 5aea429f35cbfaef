//! UI-issued JWTs: HS256 with `RCSYNC_JWT_SECRET`, `exp` required, `nbf` honoured, team roles in
//! `teams`.

use std::collections::HashMap;

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::permission::Role;

#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    teams: Vec<TeamClaim>,
}

#[derive(Debug, Deserialize)]
struct TeamClaim {
    id: String,
    role: Role,
}

/// The verified identity a JWT carries.
#[derive(Debug, Clone)]
pub struct JwtIdentity {
    pub subject: Option<String>,
    pub team_roles: HashMap<String, Role>,
}

impl JwtVerifier {
    pub fn new(secret: &SecretString) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        // A token not valid yet (`nbf`) is refused like an expired one, with the same leeway.
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            key: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Option<JwtIdentity> {
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .ok()?
            .claims;
        Some(JwtIdentity {
            subject: claims.sub,
            team_roles: claims.teams.into_iter().map(|t| (t.id, t.role)).collect(),
        })
    }
}
