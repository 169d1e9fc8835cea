//! Identity: access tokens (JWT), refresh tokens, passwords, one-time codes by SMS,
//! and the extractors handlers use to learn who is calling.

mod extract;
pub mod otp;
mod password;
mod tokens;

pub use extract::{AuthUser, MaybeAuthUser, bearer_token};
pub use otp::{OtpCodes, SmsError, SmsSender, default_sms_sender};
pub use password::{MAX_USERNAME_CHARS, check_username, hash_password, verify_password};
pub use tokens::{Claims, JwtKeys, RefreshTokens, TokenError, load_jwt_secret};
