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

fn authenticate(req: &HttpRequest) -> Result<Option<AuthUser>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized(
            "expected an Authorization: Bearer token",
        ))?;
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
