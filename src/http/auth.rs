//! Sign-in: one-time codes for citizens, passwords for staff, refresh-token
//! rotation for both. Token requests take the shape of OAuth 2 token requests.

use std::borrow::Cow;

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{MAX_USERNAME_CHARS, OtpCodes, RefreshTokens, otp, verify_password};
use crate::domain::phone::{PHONE_PATTERN, Phone};
use crate::domain::role::Role;
use crate::error::ApiError;
use crate::error::extractors::Json;
use crate::http::client_ip;
use crate::state::{AppState, now};
use crate::store::{NewRefreshToken, Rotation, User};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(request_otp).service(token);
}

#[derive(Deserialize, ToSchema)]
pub struct OtpRequest {
    pub phone: PhoneText,
}

/// A phone number as a client spells it; parsed into a [`Phone`] by the
/// handler. Its own type so the API document carries the accepted spellings.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct PhoneText(String);

impl PhoneText {
    /// The number in its stored form, or the 422 that names the field.
    fn parse(&self) -> Result<Phone, ApiError> {
        Phone::parse(&self.0)
            .map_err(|e| ApiError::invalid_field("phone", "invalid_phone", e.to_string()))
    }
}

impl utoipa::PartialSchema for PhoneText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(PHONE_PATTERN))
            .description(Some(
                "Mainland mobile number, e.g. `13812345678` or `+86 138 1234 5678`.",
            ))
            .into()
    }
}

impl ToSchema for PhoneText {
    fn name() -> Cow<'static, str> {
        "PhoneNumber".into()
    }
}

#[derive(Serialize, ToSchema)]
pub struct OtpSent {
    /// Seconds the code stays valid.
    pub expires_in: u64,
    /// Seconds before another code can be requested for this phone.
    pub resend_after: u64,
}

/// Sends a six-digit sign-in code by SMS.
#[utoipa::path(
    tag = "auth",
    request_body = OtpRequest,
    responses(
        (status = 202, body = OtpSent),
        (status = 422, description = "Not a mainland mobile number", body = crate::error::Problem),
        (status = 429, description = "Too many codes for this phone or client", body = crate::error::Problem),
        (status = 503, description = "The SMS gateway failed", body = crate::error::Problem),
    )
)]
#[post("/api/v1/auth/otp")]
async fn request_otp(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<OtpRequest>,
) -> Result<HttpResponse, ApiError> {
    let phone = body.phone.parse()?;
    let auth = &state.settings.auth;
    let now = now();
    throttle_client(&req, &state, ClientLimit::Codes, now).await?;
    // The phone's day is checked before anything is stored, so a refusal leaves
    // the code the citizen already has alone; it is counted once a code is sent.
    let day = otp::RequestWindow::day_containing(now, state.tz);
    let day_key = format!("phone/{}", phone.as_e164());
    if state.repo.client_requests(&day_key, day.start).await?
        >= i64::from(auth.otp_per_phone_per_day)
    {
        return Err(ApiError::TooManyRequests {
            detail: "this phone has had as many codes as one day allows; try again tomorrow".into(),
            retry_after_secs: day.seconds_left(now),
        });
    }
    let code = OtpCodes::generate();
    let code_hash = state.otp.hash(&phone, &code);
    let stored = state
        .repo
        .put_otp(
            &phone,
            &code_hash,
            now,
            now + Duration::seconds(auth.otp_ttl_secs as i64),
            now - Duration::seconds(auth.otp_resend_secs as i64),
        )
        .await?;
    if !stored {
        return Err(ApiError::TooManyRequests {
            detail: "a code was sent to this phone moments ago; wait before asking for another"
                .into(),
            retry_after_secs: auth.otp_resend_secs,
        });
    }
    if let Err(e) = state.sms.send_code(&phone, &code).await {
        // The code never reached the phone: withdraw it (not a newer one a retry
        // may have stored meanwhile), which also reopens the resend gate, or the
        // citizen's retry would be refused as too soon for a code never received.
        if let Err(cleanup) = state.repo.withdraw_otp(&phone, &code_hash).await {
            tracing::warn!(error = %cleanup, "could not withdraw an unsent code");
        }
        return Err(ApiError::unavailable("the SMS gateway", e));
    }
    state.repo.count_client_request(&day_key, day.start).await?;
    Ok(HttpResponse::Accepted().json(OtpSent {
        expires_in: auth.otp_ttl_secs,
        resend_after: auth.otp_resend_secs,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    /// Citizens: the phone and the code sent to it.
    Otp { phone: PhoneText, code: String },
    /// Staff accounts.
    Password { username: String, password: String },
    /// Exchanges a refresh token for a new pair; each refresh token works once.
    RefreshToken { refresh_token: String },
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token stays valid.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// What a per-client limit counts.
#[derive(Clone, Copy)]
enum ClientLimit {
    Codes,
    Tokens,
}

/// 429 once the calling client (an IPv4 address or an IPv6 /64) has made more
/// requests of `limit`'s kind this minute than the settings allow.
async fn throttle_client(
    req: &HttpRequest,
    state: &AppState,
    limit: ClientLimit,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let Some(client) = client_ip::of_request(req, &state.settings.server.trusted_proxies) else {
        return Ok(());
    };
    let auth = &state.settings.auth;
    // Code requests keep the bare address as their key, as stored before tokens
    // were counted too.
    let (key, allowed, what) = match limit {
        ClientLimit::Codes => (
            client_ip::limit_key(client),
            auth.otp_per_ip_per_minute,
            "code",
        ),
        ClientLimit::Tokens => (
            format!("token/{}", client_ip::limit_key(client)),
            auth.token_per_ip_per_minute,
            "sign-in",
        ),
    };
    let refusal = format!("too many {what} requests from this client; try again later");
    count_within(
        state,
        &key,
        &key,
        allowed,
        otp::RequestWindow::containing(now),
        now,
        &refusal,
    )
    .await
}

/// Counts one request under `key` in `window`, in the database so every
/// instance counts against the same limit; 429 saying `refusal` once more than
/// `allowed` have come. The first refusal of a window is logged, as `logged`:
/// a key may hold what the log must not, such as a username that is really a
/// password typed into the wrong field.
async fn count_within(
    state: &AppState,
    key: &str,
    logged: &str,
    allowed: u32,
    window: otp::RequestWindow,
    now: chrono::DateTime<chrono::Utc>,
    refusal: &str,
) -> Result<(), ApiError> {
    let requests = state.repo.count_client_request(key, window.start).await?;
    if requests <= i64::from(allowed) {
        return Ok(());
    }
    if requests == i64::from(allowed) + 1 {
        tracing::warn!(
            key = logged,
            allowed,
            "a request limit was reached; refused until its window ends"
        );
    }
    Err(ApiError::TooManyRequests {
        detail: refusal.into(),
        retry_after_secs: window.seconds_left(now),
    })
}

fn invalid_grant(detail: &str) -> ApiError {
    ApiError::bad_request("invalid_grant", detail)
}

/// Issues an access token and a refresh token.
#[utoipa::path(
    tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "Wrong code, password or refresh token (`invalid_grant`)", body = crate::error::Problem),
        (status = 429, description = "Too many sign-in requests from this client, or too many password sign-ins for this account", body = crate::error::Problem),
    )
)]
#[post("/api/v1/auth/token")]
async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<TokenRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let now = now();
    throttle_client(&req, &state, ClientLimit::Tokens, now).await?;
    let refresh_ttl = Duration::days(state.settings.auth.refresh_ttl_days as i64);
    let user = match body.into_inner() {
        TokenRequest::Otp { phone, code } => {
            let phone = phone.parse()?;
            let record =
                state.repo.count_otp_attempt(&phone).await?.ok_or_else(|| {
                    invalid_grant("no valid code for this phone; request a new one")
                })?;
            if record.expires_at <= now {
                return Err(invalid_grant("the code has expired; request a new one"));
            }
            if record.attempts > i64::from(state.settings.auth.otp_max_attempts) {
                state.repo.delete_otp(&phone).await?;
                return Err(invalid_grant("too many wrong codes; request a new one"));
            }
            if !state.otp.matches(&phone, code.trim(), &record.code_hash) {
                return Err(invalid_grant("wrong code"));
            }
            // Of requests that bring the same code at once, only the one that
            // deletes it signs in.
            if !state.repo.withdraw_otp(&phone, &record.code_hash).await? {
                return Err(invalid_grant("the code has been used; request a new one"));
            }
            let user = state.repo.citizen_for_phone(&phone, now).await?;
            // A code proves only the phone. Staff rights are guarded by a
            // password, so a staff account given this number is not opened.
            if user.role != Role::Citizen {
                return Err(invalid_grant(
                    "this phone belongs to a staff account; sign in with its username and password",
                ));
            }
            user
        }
        TokenRequest::Password { username, password } => {
            if username.chars().count() > MAX_USERNAME_CHARS {
                return Err(invalid_grant("wrong username or password"));
            }
            // Attempts are counted before the password is checked, so guesses
            // sent at once cannot all read the count before any adds to it;
            // and per username whether or not it exists, so the limit says
            // nothing about which accounts do.
            let allowed = state.settings.auth.password_attempts_per_account;
            if allowed > 0 {
                count_within(
                    &state,
                    &format!("password/{username}"),
                    "password/(one account)",
                    allowed,
                    otp::RequestWindow::quarter_hour_containing(now),
                    now,
                    "too many password sign-ins for this account; try again later",
                )
                .await?;
            }
            let user = state.repo.user_by_username(&username).await?;
            let stored = user.as_ref().and_then(|u| u.password_hash.clone());
            let ok = web::block(move || verify_password(&password, stored.as_deref()))
                .await
                .map_err(ApiError::internal)?;
            match user {
                Some(user) if ok && !user.disabled && user.role.uses_password() => user,
                _ => return Err(invalid_grant("wrong username or password")),
            }
        }
        TokenRequest::RefreshToken { refresh_token } => {
            let next = RefreshTokens::generate();
            let rotation = state
                .repo
                .rotate_refresh_token(
                    &RefreshTokens::hash(&refresh_token),
                    &RefreshTokens::hash(&next),
                    now + refresh_ttl,
                    now,
                )
                .await?;
            return match rotation {
                Rotation::Rotated(user) => Ok(web::Json(access_for(&state, &user, next, now)?)),
                Rotation::Reused => {
                    tracing::warn!("refresh token presented twice; its family was revoked");
                    Err(invalid_grant("refresh token already used; sign in again"))
                }
                Rotation::Invalid => Err(invalid_grant("refresh token is invalid or expired")),
            };
        }
    };
    if user.disabled {
        return Err(invalid_grant("this account is disabled"));
    }
    let refresh = RefreshTokens::generate();
    state
        .repo
        .insert_refresh_token(&NewRefreshToken {
            token_hash: RefreshTokens::hash(&refresh),
            family_id: Uuid::now_v7(),
            user_id: user.id,
            expires_at: now + refresh_ttl,
            created_at: now,
        })
        .await?;
    Ok(web::Json(access_for(&state, &user, refresh, now)?))
}

fn access_for(
    state: &AppState,
    user: &User,
    refresh_token: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TokenResponse, ApiError> {
    let ttl = state.jwt.access_ttl_secs();
    let access_token = state
        .jwt
        .issue(user.id, user.role, user.unit_id.clone(), now, ttl)
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
        refresh_token,
    })
}
