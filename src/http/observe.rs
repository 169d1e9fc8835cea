//! What every request leaves behind: its `tracing` span, its line in the
//! metrics, and the request id echoed to the client.
//!
//! The span opens before routing, so the route it matched is recorded when the
//! response comes back; that one lookup serves the span and the metrics alike.
//! (tracing-actix-web's default span looks the route up before routing as well,
//! a second regex walk over every pattern, and takes the client address from
//! `X-Forwarded-For` whoever sent it.)

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use tracing::Span;
use tracing::field::{Empty, display};
use tracing_actix_web::{RequestId, RootSpan, RootSpanBuilder};

use super::client_ip;
use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The request span, for `TracingLogger::<RequestSpan>`.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // Field values are only computed when the span is enabled.
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = Empty,
            http.target = %request.uri(),
            http.client_ip = client_ip::of_request(
                request.request(),
                request
                    .app_data::<web::Data<AppState>>()
                    .map_or(&[], |state| state.settings.server.trusted_proxies.as_slice()),
            )
            .map(display),
            http.user_agent = request
                .headers()
                .get(USER_AGENT)
                .and_then(|agent| agent.to_str().ok()),
            http.status_code = Empty,
            request_id = request.extensions().get::<RequestId>().map(display),
            problem = Empty,
        )
    }

    /// Records the status and, for a problem, its stable code — never the
    /// error's text: a refusal of bad input quotes the input (a phone number
    /// sent as a number, a one-time code), and it would land in the log.
    /// (The causes of 500 and 503 are logged where they are turned into
    /// problems, in `error`.)
    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", status.as_u16());
        if let Some(problem) = error.and_then(|e| e.as_error::<ApiError>()) {
            span.record("problem", problem.code());
        }
    }
}

/// Records the matched route in the request span, counts the request in the
/// metrics and echoes the request id to the client.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    let mut res = next.call(req).await?;
    let pattern = res.request().match_pattern();
    let route = pattern.as_deref().unwrap_or(UNMATCHED);
    if let Some(span) = res.request().extensions().get::<RootSpan>() {
        span.record("http.route", display(route));
    }
    if let Some(metrics) = metrics {
        metrics.observe_request(&method, route, res.status().as_u16(), started.elapsed());
    }
    if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test};
    use tracing_actix_web::TracingLogger;
    use tracing_subscriber::fmt::format::FmtSpan;

    use super::*;

    /// Where the test subscriber writes its lines.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The closed request spans of `requests`, one log line each, through the
    /// same middleware stack as the server (without its state).
    async fn request_spans(requests: Vec<test::TestRequest>) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .without_time()
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .route(
                    "/cases/{id}/timeline",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                )
                .route(
                    "/auth/otp",
                    web::post().to(|| async {
                        // As serde words it when a phone number comes as a number.
                        Err::<HttpResponse, _>(ApiError::unprocessable(
                            "invalid_body",
                            "invalid request body: phone: invalid type: integer `13812345678`",
                        ))
                    }),
                )
                .wrap(from_fn(observe))
                .wrap(TracingLogger::<RequestSpan>::new()),
        )
        .await;
        for request in requests {
            let response = test::call_service(&app, request.to_request()).await;
            assert!(response.headers().contains_key(REQUEST_ID));
        }
        String::from_utf8(lines.0.lock().expect("lines").clone()).expect("UTF-8")
    }

    #[actix_web::test]
    async fn request_spans_name_the_route_matched_and_the_status() {
        let spans = request_spans(vec![
            test::TestRequest::get()
                .uri("/cases/42/timeline?page=2")
                .insert_header((USER_AGENT, "civicsnap-app/3.1"))
                .peer_addr("198.51.100.9:40000".parse().expect("address")),
            test::TestRequest::get().uri("/nowhere"),
        ])
        .await;
        let [found, missing] = spans.lines().collect::<Vec<_>>()[..] else {
            panic!("two spans in {spans}");
        };
        for expected in [
            "http.method=GET",
            "http.route=/cases/{id}/timeline",
            "http.target=/cases/42/timeline?page=2",
            "http.client_ip=198.51.100.9",
            "http.user_agent=\"civicsnap-app/3.1\"",
            "http.status_code=200",
            "request_id=",
        ] {
            assert!(found.contains(expected), "{expected} in {found}");
        }
        assert!(missing.contains("http.route=unmatched"), "{missing}");
        assert!(missing.contains("http.status_code=404"), "{missing}");
    }

    #[actix_web::test]
    async fn a_refusal_is_logged_by_its_code_without_the_input_it_quotes() {
        let spans = request_spans(vec![test::TestRequest::post().uri("/auth/otp")]).await;
        assert!(spans.contains("http.status_code=422"), "{spans}");
        assert!(spans.contains("problem=\"invalid_body\""), "{spans}");
        assert!(!spans.contains("13812345678"), "{spans}");
    }

    #[actix_web::test]
    async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        // No state, so no trusted proxy: the peer is the client, whatever the
        // header claims (the trust rules are `client_ip`'s and tested there).
        let spans = request_spans(vec![
            test::TestRequest::get()
                .uri("/cases/42/timeline")
                .insert_header(("x-forwarded-for", "203.0.113.7"))
                .peer_addr("198.51.100.9:40000".parse().expect("address")),
        ])
        .await;
        assert!(spans.contains("http.client_ip=198.51.100.9"), "{spans}");
        assert!(!spans.contains("203.0.113.7"), "{spans}");
    }
}
