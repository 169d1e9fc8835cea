//! Prometheus metrics served at `/metrics`: request counts and latency by route
//! and status, photo-processing time, the photo queue, and how the background
//! jobs fare.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of both the request counter and the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route pattern (`/api/v1/reports/{id}`), never the raw path, so label
    /// cardinality stays bounded.
    route: String,
    status: u16,
}

/// Labels of the job pass counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobPassLabels {
    job: String,
    /// `ok`, `failed` or `skipped` (another instance holds the job's lease).
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

/// The request's method as a label. Clients may send any method name, so only
/// the standard ones keep theirs: the rest share one, so that no client can add
/// series without end.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    photo_seconds: Histogram,
    /// Uploads waiting for a processing slot.
    pub photo_queue: Gauge<i64, AtomicI64>,
    /// Uploads being decoded right now.
    pub photos_in_progress: Gauge<i64, AtomicI64>,
    /// End of the city's working calendar (Unix time), set when scraped.
    pub calendar_end: Gauge<i64, AtomicI64>,
    job_passes: Family<JobPassLabels, Counter>,
    job_last_success: Family<JobLabels, Gauge<i64, AtomicI64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("civicsnap");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let photo_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        let photo_queue = Gauge::<i64, AtomicI64>::default();
        let photos_in_progress = Gauge::<i64, AtomicI64>::default();
        let calendar_end = Gauge::<i64, AtomicI64>::default();
        let job_passes = Family::<JobPassLabels, Counter>::default();
        let job_last_success = Family::<JobLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency.clone(),
        );
        registry.register(
            "photo_processing_seconds",
            "Time to process one uploaded photo",
            photo_seconds.clone(),
        );
        registry.register(
            "photo_queue_depth",
            "Uploads waiting for a processing slot",
            photo_queue.clone(),
        );
        registry.register(
            "photos_in_progress",
            "Uploads being processed",
            photos_in_progress.clone(),
        );
        registry.register(
            "working_calendar_end_seconds",
            "End of the last day the city's working calendar holds (Unix time); deadlines past it \
             are refused, so alert well before it (0: no calendar loaded)",
            calendar_end.clone(),
        );
        registry.register(
            "job_passes",
            "Passes of each background job by outcome (the log says why one failed)",
            job_passes.clone(),
        );
        registry.register(
            "job_last_success_seconds",
            "When each background job last finished a pass without error (Unix time); the \
             deadline sweeper runs every workflow.sweep_interval_secs, so alert when it falls \
             minutes behind",
            job_last_success.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            photo_seconds,
            photo_queue,
            photos_in_progress,
            calendar_end,
            job_passes,
            job_last_success,
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method_label(method).to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Shows `job` with no successful pass yet (last success 0), so an alert on
    /// its age fires for a job that fails from the start too.
    pub fn job_started(&self, job: &str) {
        self.job_succeeded(job, 0);
    }

    /// A pass of the background job `job` ended with `outcome`.
    pub fn count_job_pass(&self, job: &str, outcome: &str) {
        let labels = JobPassLabels {
            job: job.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.job_passes.get_or_create(&labels).inc();
    }

    /// `job` last finished a pass without error at `finished_at` (Unix time).
    pub fn job_succeeded(&self, job: &str, finished_at: i64) {
        self.job_last_success
            .get_or_create(&JobLabels {
                job: job.to_owned(),
            })
            .set(finished_at);
    }

    pub fn observe_photo(&self, elapsed: Duration) {
        self.photo_seconds.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_observations() {
        let metrics = Metrics::new();
        metrics.observe_request("GET", "/healthz", 200, Duration::from_millis(2));
        metrics.observe_photo(Duration::from_millis(60));
        metrics.photo_queue.set(3);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"civicsnap_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"civicsnap_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("civicsnap_photo_processing_seconds_count 1"));
        assert!(text.contains("civicsnap_photo_queue_depth 3"));
    }

    #[test]
    fn a_failed_pass_is_counted_but_keeps_the_last_success() {
        let metrics = Metrics::new();
        metrics.job_started("deadline_sweeper");
        assert!(
            metrics
                .render()
                .contains(r#"civicsnap_job_last_success_seconds{job="deadline_sweeper"} 0"#)
        );
        metrics.count_job_pass("deadline_sweeper", "ok");
        metrics.job_succeeded("deadline_sweeper", 1_800_000_000);
        metrics.count_job_pass("deadline_sweeper", "failed");
        metrics.count_job_pass("deadline_sweeper", "skipped");
        let text = metrics.render();
        for line in [
            r#"civicsnap_job_passes_total{job="deadline_sweeper",outcome="ok"} 1"#,
            r#"civicsnap_job_passes_total{job="deadline_sweeper",outcome="failed"} 1"#,
            r#"civicsnap_job_passes_total{job="deadline_sweeper",outcome="skipped"} 1"#,
            r#"civicsnap_job_last_success_seconds{job="deadline_sweeper"} 1800000000"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
