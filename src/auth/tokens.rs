//! Access tokens are short-lived HS256 JWTs with the algorithm pinned; refresh
//! tokens are opaque random strings of which only a hash is stored.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::role::Role;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_secs: i64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, access_ttl_secs: u64) -> JwtKeys {
        // Pinned to HS256: a token claiming any other algorithm (or `none`) fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access_ttl_secs: i64::try_from(access_ttl_secs).unwrap_or(i64::MAX),
        }
    }

    pub fn from_settings(settings: &Settings, secret: &str) -> JwtKeys {
        JwtKeys::new(
            secret.as_bytes(),
            &settings.auth.issuer,
            &settings.auth.audience,
            settings.auth.access_ttl_secs,
        )
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    /// An access token for `sub` valid for `ttl_secs` from `now`.
    pub fn issue(
        &self,
        sub: Uuid,
        role: Role,
        unit_id: Option<String>,
        now: DateTime<Utc>,
        ttl_secs: i64,
    ) -> Result<String, TokenError> {
        let claims = Claims {
            sub: sub.to_string(),
            role,
            unit_id,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            exp: now.timestamp().saturating_add(ttl_secs),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| TokenError::Invalid)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// Opaque refresh tokens: 256 random bits, stored as SHA-256 so a database leak
/// does not leak usable tokens.
pub struct RefreshTokens;

impl RefreshTokens {
    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }
}

/// The configured secret, or in dev mode one generated on first use and kept in
/// `<data_dir>/jwt-secret` (so tokens survive restarts and the `token` CLI agrees
/// with the server).
pub fn load_jwt_secret(settings: &Settings) -> std::io::Result<String> {
    if let Some(secret) = &settings.auth.jwt_secret {
        return Ok(secret.clone());
    }
    dev_secret_file(&settings.data_dir.join("jwt-secret"))
}

fn dev_secret_file(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(secret.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let secret = RefreshTokens::generate() + &RefreshTokens::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, secret.as_bytes())?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32], "civicsnap", "civicsnap-api", 900)
    }

    #[test]
    fn round_trip() {
        let keys = keys();
        let id = Uuid::now_v7();
        let token = keys
            .issue(id, Role::UnitStaff, Some("U1".into()), Utc::now(), 60)
            .unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, id.to_string());
        assert_eq!(claims.role, Role::UnitStaff);
        assert_eq!(claims.unit_id.as_deref(), Some("U1"));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = keys();
        let past = Utc::now() - chrono::Duration::hours(2);
        let token = keys
            .issue(Uuid::now_v7(), Role::Citizen, None, past, 60)
            .unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn foreign_secret_audience_issuer_and_alg_none_are_refused() {
        let other = JwtKeys::new(&[8u8; 32], "civicsnap", "civicsnap-api", 900);
        let token = other
            .issue(Uuid::now_v7(), Role::Admin, None, Utc::now(), 60)
            .unwrap();
        assert_eq!(keys().verify(&token), Err(TokenError::Invalid));

        let wrong_aud = JwtKeys::new(&[7u8; 32], "civicsnap", "elsewhere", 900);
        let token = wrong_aud
            .issue(Uuid::now_v7(), Role::Admin, None, Utc::now(), 60)
            .unwrap();
        assert_eq!(keys().verify(&token), Err(TokenError::Invalid));

        let wrong_issuer = JwtKeys::new(&[7u8; 32], "elsewhere", "civicsnap-api", 900);
        let token = wrong_issuer
            .issue(Uuid::now_v7(), Role::Admin, None, Utc::now(), 60)
            .unwrap();
        assert_eq!(keys().verify(&token), Err(TokenError::Invalid));

        // An unsigned token claiming admin.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let exp = Utc::now().timestamp() + 600;
        let body = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{}","role":"admin","iss":"civicsnap","aud":"civicsnap-api","iat":0,"exp":{exp}}}"#,
            Uuid::now_v7()
        ));
        assert_eq!(
            keys().verify(&format!("{header}.{body}.")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = RefreshTokens::generate();
        assert_ne!(a, RefreshTokens::generate());
        assert_eq!(RefreshTokens::hash(&a).len(), 64);
        assert_eq!(RefreshTokens::hash(&a), RefreshTokens::hash(&a));
    }

    #[test]
    fn dev_secret_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/jwt-secret");
        let first = dev_secret_file(&path).unwrap();
        assert!(first.len() >= 64);
        assert_eq!(dev_secret_file(&path).unwrap(), first);
    }
}
