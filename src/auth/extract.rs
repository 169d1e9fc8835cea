//! `AuthUser` for endpoints that need a signed-in caller, `MaybeAuthUser` for those
//! that serve the public too. Both read `Authorization: Bearer <jwt>`.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use uuid::Uuid;

use super::TokenError;
use crate::domain::role::Role;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
    /// The responsible unit of unit staff.
    pub unit_id: Option<String>,
}

impl AuthUser {
    /// 403 unless the caller's role passes `allowed`.
    pub fn require(
        &self,
        allowed: impl Fn(Role) -> bool,
        what: &'static str,
    ) -> Result<(), ApiError> {
        if allowed(self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(what))
        }
    }
}

pub struct MaybeAuthUser(pub Option<AuthUser>);

/// The credentials of a `Bearer` Authorization value (the scheme is
/// case-insensitive, RFC 7235); `None` for any other scheme.
pub fn bearer_token(value: &header::HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?.trim();
    let (scheme, credentials) = text.split_once(' ').unwrap_or((text, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
}

fn authenticate(req: &HttpRequest) -> Result<Option<AuthUser>, ApiError> {
    // Credentials of another scheme (say, Basic from a gateway in front of the
    // service) are not ours to judge: the caller is anonymous here, so public
    // endpoints still answer and the rest ask for a bearer token.
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(bearer_token)
    else {
        return Ok(None);
    };
    if token.is_empty() {
        return Err(ApiError::InvalidToken("the bearer token is empty"));
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
    let claims = state.jwt.verify(token).map_err(|e| match e {
        TokenError::Expired => ApiError::InvalidToken("the access token has expired"),
        TokenError::Invalid => ApiError::InvalidToken("the access token is invalid"),
    })?;
    let id = Uuid::parse_str(&claims.sub)
        .map_err(|_| ApiError::InvalidToken("the access token is invalid"))?;
    if claims.role.is_unit_role() && claims.unit_id.is_none() {
        return Err(ApiError::InvalidToken("the access token is invalid"));
    }
    Ok(Some(AuthUser {
        id,
        role: claims.role,
        unit_id: claims.unit_id,
    }))
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<AuthUser, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            authenticate(req).and_then(|user| user.ok_or(ApiError::Unauthorized("sign in first"))),
        )
    }
}

impl FromRequest for MaybeAuthUser {
    type Error = ApiError;
    type Future = Ready<Result<MaybeAuthUser, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(MaybeAuthUser))
    }
}
