//! One error type for the HTTP surface: every failure leaves as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";
/// `Retry-After` of a 503 from a failed backing service.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 30;

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
        field: Option<Cow<'static, str>>,
    },
    /// No bearer token came with the request (nothing, or another scheme).
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    /// A bearer token came, but it is expired, forged or malformed.
    #[error("authentication required: {0}")]
    InvalidToken(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// A role or unit that may see the resource but not do this to it.
    #[error("{detail}")]
    Denied { code: &'static str, detail: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The path exists, the method does not; `allow` lists those that do.
    #[error("{method} is not served here; use {allow}")]
    MethodNotAllowed { method: String, allow: String },
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
    /// A backing service (photo storage, the SMS gateway) failed. The cause is
    /// logged, never sent: it may name hosts, buckets or a gateway's reply.
    #[error("{service} is unavailable; try again later")]
    Unavailable {
        service: &'static str,
        #[source]
        cause: anyhow::Error,
    },
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
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError::Unprocessable {
            code,
            detail: detail.into(),
            field: Some(field.into()),
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

    pub fn unavailable(service: &'static str, cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Unavailable {
            service,
            cause: cause.into(),
        }
    }

    /// The one answer to any body over its limit, whichever extractor read it.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::PayloadTooLarge {
            code: "body_too_large",
            detail: format!("request body exceeds the limit of {limit} bytes"),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Denied { code, .. }
            | ApiError::InvalidItems { code, .. }
            | ApiError::PayloadTooLarge { code, .. } => code,
            ApiError::Unauthorized(_) | ApiError::InvalidToken(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
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
            ApiError::Unprocessable { field, .. } => field.as_deref().map(str::to_owned),
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
            ApiError::Unauthorized(_) | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            ApiError::Unavailable { service, cause } => {
                tracing::error!(error = ?cause, service, "backing service failed")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            // RFC 6750 §3.1: a request that sent no credentials gets no error code.
            ApiError::Unauthorized(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="civicsnap""#),
                ));
            }
            ApiError::InvalidToken(reason) => {
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
            // RFC 9110 §15.5.6: a 405 says which methods the resource has.
            ApiError::MethodNotAllowed { allow, .. } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    response.insert_header((header::ALLOW, value));
                }
            }
            // A gateway or store that failed is usually back within moments; say
            // when a client (or the 12345 platform) may sensibly try again.
            ApiError::Unavailable { .. } => {
                response.insert_header((
                    header::RETRY_AFTER,
                    UNAVAILABLE_RETRY_AFTER_SECS.to_string(),
                ));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        if refused_nul(&err) {
            return nul_refused();
        }
        // A 503 with Retry-After tells clients and load balancers to come back,
        // where a 500 would say the request itself broke something.
        if err.is_unavailable() {
            return ApiError::unavailable("database", err);
        }
        ApiError::Internal(err.into())
    }
}

/// PostgreSQL refuses U+0000 in text (SQLSTATE 22021), where SQLite stores
/// it. JSON bodies are checked before they get there; this catches the rest
/// (a percent-encoded `%00` in a path) as the client's mistake it is.
fn refused_nul(err: &crate::store::StoreError) -> bool {
    matches!(
        err,
        crate::store::StoreError::Database(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("22021")
    )
}

fn nul_refused() -> ApiError {
    ApiError::unprocessable(
        "invalid_text",
        "text may not contain the NUL character (U+0000)",
    )
}

/// The JSON body extractor and the settings of the framework's own extractors,
/// so that bad JSON, a bad query or path and oversized bodies are problems too:
/// no client ever sees a text/plain error.
pub mod extractors {
    use std::ops::Deref;

    use actix_web::dev::{Decompress, Payload};
    use actix_web::error::{PathError, QueryPayloadError};
    use actix_web::{FromRequest, HttpMessage, HttpRequest, mime, web};
    use futures_util::future::LocalBoxFuture;
    use serde::de::DeserializeOwned;

    use super::ApiError;
    use crate::domain::nul;

    /// The largest JSON body a request may carry.
    #[derive(Clone, Copy, Debug)]
    pub struct JsonLimit(pub usize);

    /// Used when no `JsonLimit` is registered (actix's own default).
    const DEFAULT_JSON_LIMIT: usize = 2 * 1024 * 1024;

    /// A JSON request body. Unlike `web::Json`, a value of the wrong type or
    /// shape is reported with where it sits (`location.lat`), in the detail and
    /// in `field`, so a client knows which of its fields to fix. Named `Json`
    /// so that utoipa documents it as the request body.
    #[derive(Debug)]
    pub struct Json<T>(pub T);

    impl<T> Json<T> {
        pub fn into_inner(self) -> T {
            self.0
        }
    }

    impl<T> Deref for Json<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }

    impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
        type Error = actix_web::Error;
        type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

        fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
            let limit = req
                .app_data::<JsonLimit>()
                .map_or(DEFAULT_JSON_LIMIT, |limit| limit.0);
            let is_json = matches!(
                req.mime_type(),
                Ok(Some(m)) if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON)
            );
            // Bodies sent with a Content-Encoding are unpacked first, as
            // `web::Json` did, and the limit counts the unpacked bytes.
            let decoder = Decompress::from_headers(payload.take(), req.headers());
            let mut unpacked: Payload = Payload::Stream {
                payload: Box::pin(decoder),
            };
            let body = web::Payload::from_request(req, &mut unpacked);
            Box::pin(async move {
                if !is_json {
                    return Err(ApiError::UnsupportedMediaType(
                        "send JSON with Content-Type: application/json".into(),
                    )
                    .into());
                }
                let bytes = read_body(body.await?, limit).await?;
                Ok(Json(parse_json(&bytes)?))
            })
        }
    }

    /// Malformed JSON is a 400 `malformed_json`; JSON of the wrong shape a 422
    /// `invalid_body` naming the path of the value that did not fit.
    fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
        let mut reader = serde_json::Deserializer::from_slice(bytes);
        let parsed = serde_path_to_error::deserialize(&mut reader);
        let value = match parsed {
            Ok(value) => value,
            Err(e) if e.inner().is_data() => {
                let path = e.path().to_string();
                let detail = format!("invalid request body: {e}");
                return Err(match path.as_str() {
                    "." => ApiError::unprocessable("invalid_body", detail),
                    _ => ApiError::invalid_field(path, "invalid_body", detail),
                });
            }
            Err(e) => return Err(malformed(e.into_inner())),
        };
        reader.end().map_err(malformed)?;
        // A raw NUL is not JSON at all; the escape is.
        if nul::holds_nul(bytes, nul::Format::Json) {
            return Err(super::nul_refused());
        }
        Ok(value)
    }

    /// A raw upload as text: UTF-8 (else 422 `invalid_code`), and free of NULs
    /// (422 `invalid_text`), as every JSON body is ([`parse_json`]).
    pub fn upload_text<'a>(
        body: &'a [u8],
        format: nul::Format,
        invalid_code: &'static str,
    ) -> Result<&'a str, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::unprocessable(invalid_code, "the file is not UTF-8"))?;
        if nul::holds_nul(body, format) {
            return Err(super::nul_refused());
        }
        Ok(text)
    }

    fn malformed(e: serde_json::Error) -> ApiError {
        ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
    }

    pub fn query_config() -> web::QueryConfig {
        web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
            ApiError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
        })
    }

    /// Reads a raw body of at most `limit` bytes. `web::Bytes` would answer an
    /// oversized body with the framework's text/plain 413, and `web::PayloadConfig`
    /// takes no error handler, so raw bodies are read through this instead.
    pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
        match payload.to_bytes_limited(limit).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(ApiError::bad_request(
                "invalid_body",
                format!("could not read the body: {e}"),
            )),
            Err(_) => Err(ApiError::body_too_large(limit)),
        }
    }

    pub fn path_config() -> web::PathConfig {
        // A malformed id cannot name anything that exists: answer as for a missing one.
        web::PathConfig::default()
            .error_handler(|_err: PathError, _req| ApiError::NotFound("resource").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_service_is_named_but_its_failure_is_not_sent() {
        let err = ApiError::unavailable(
            "photo storage",
            anyhow::anyhow!("PUT http://minio.internal:9000/photos/x: 403 SignatureDoesNotMatch"),
        );
        let problem = err.problem();
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (503, "unavailable")
        );
        assert_eq!(
            problem.detail.as_deref(),
            Some("photo storage is unavailable; try again later")
        );
    }

    #[test]
    fn an_unreachable_database_is_a_503_that_hides_why() {
        use crate::store::StoreError;
        for err in [
            StoreError::Database(sqlx::Error::PoolTimedOut),
            StoreError::Database(sqlx::Error::PoolClosed),
            StoreError::Database(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connect to db.internal:5432 refused",
            ))),
            StoreError::Unavailable("the SQLite writer stopped".to_owned()),
        ] {
            let shown = err.to_string();
            let response = ApiError::from(err).error_response();
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{shown}"
            );
            assert!(
                response.headers().contains_key(header::RETRY_AFTER),
                "{shown}"
            );
        }
        let problem = ApiError::from(StoreError::Database(sqlx::Error::PoolTimedOut)).problem();
        assert_eq!(problem.code, "unavailable");
        assert_eq!(
            problem.detail.as_deref(),
            Some("database is unavailable; try again later")
        );
    }
}
