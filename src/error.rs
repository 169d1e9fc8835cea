//! One error type for the HTTP surface: every failure leaves as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` plus `code` is enough to act on).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable code for programs, e.g. `photo_too_large`.
    pub code: String,
    /// Which input field was wrong, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Per-item reasons when a batch (such as a zone import) was refused whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ItemError>,
}

/// Why one item of a batch was refused.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct ItemError {
    /// Position in the submitted list (0-based).
    pub index: usize,
    /// The item's own key, when it had one (e.g. a zone code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{detail}")]
    Unprocessable {
        code: &'static str,
        detail: String,
        field: Option<&'static str>,
    },
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// A role or unit that may see the resource but not do this to it.
    #[error("{detail}")]
    Denied { code: &'static str, detail: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// A batch refused whole, with a reason per refused item.
    #[error("{detail}")]
    InvalidItems {
        code: &'static str,
        detail: String,
        errors: Vec<ItemError>,
    },
    #[error("{detail}")]
    PayloadTooLarge { code: &'static str, detail: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything we did not expect. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Unprocessable {
            code,
            detail: detail.into(),
            field: None,
        }
    }

    pub fn invalid_field(
        field: &'static str,
        code: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError::Unprocessable {
            code,
            detail: detail.into(),
            field: Some(field),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(err.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Denied { code, .. }
            | ApiError::InvalidItems { code, .. }
            | ApiError::PayloadTooLarge { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        self.status_code().canonical_reason().unwrap_or("Error")
    }

    pub fn problem(&self) -> Problem {
        let detail = match self {
            ApiError::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let field = match self {
            ApiError::Unprocessable { field, .. } => field.map(str::to_owned),
            _ => None,
        };
        Problem {
            kind: "about:blank".into(),
            title: self.title().into(),
            status: self.status_code().as_u16(),
            detail: Some(detail),
            code: self.code().into(),
            field,
            errors: match self {
                ApiError::InvalidItems { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } | ApiError::InvalidItems { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            ApiError::Unauthorized(reason) => {
                let challenge = format!(
                    "Bearer realm=\"civicsnap\", error=\"invalid_token\", error_description=\"{reason}\""
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        ApiError::Internal(err.into())
    }
}

/// Turns the framework's own extractor errors (bad JSON, bad query, bad path,
/// oversized bodies) into problems, so no client ever sees a text/plain error.
pub mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::{HttpRequest, web};

    use super::ApiError;

    pub fn json_config(limit: usize) -> web::JsonConfig {
        web::JsonConfig::default()
            .limit(limit)
            .error_handler(|err, _req: &HttpRequest| {
                let api = match &err {
                    JsonPayloadError::OverflowKnownLength { length, limit } => {
                        ApiError::PayloadTooLarge {
                            code: "body_too_large",
                            detail: format!("request body is {length} bytes; the limit is {limit}"),
                        }
                    }
                    JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge {
                        code: "body_too_large",
                        detail: format!("request body exceeds the limit of {limit} bytes"),
                    },
                    JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                        "send JSON with Content-Type: application/json".into(),
                    ),
                    JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::unprocessable(
                        "invalid_body",
                        format!("invalid request body: {e}"),
                    ),
                    other => {
                        ApiError::bad_request("malformed_json", format!("malformed JSON: {other}"))
                    }
                };
                api.into()
            })
    }

    pub fn query_config() -> web::QueryConfig {
        web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
            ApiError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
        })
    }

    pub fn path_config() -> web::PathConfig {
        // A malformed id cannot name anything that exists: answer as for a missing one.
        web::PathConfig::default()
            .error_handler(|_err: PathError, _req| ApiError::NotFound("resource").into())
    }
}
