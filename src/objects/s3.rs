//! Photos in an S3-compatible bucket (AWS S3, MinIO, moto, …).

use std::fmt;

use bytes::Bytes;
use s3::command::Command;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::request::Request as _;
use s3::request::tokio_backend::ReqwestRequest;
use s3::{Bucket, BucketConfiguration, Region};

use super::{ObjectKey, PhotoStore, StoreError};

/// AWS's default region. Creating a bucket there must not send a
/// `LocationConstraint` (S3 and moto reject one naming `us-east-1`).
const DEFAULT_REGION: &str = "us-east-1";

#[derive(Clone)]
pub struct S3Config {
    /// Base URL, e.g. `http://minio:9000` or `https://s3.eu-central-1.amazonaws.com`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`;
    /// required by MinIO and most self-hosted servers.
    pub path_style: bool,
}

/// Hand-written so the secret never reaches logs via `{:?}`.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"***")
            .field("path_style", &self.path_style)
            .finish()
    }
}

pub struct S3Store {
    bucket: Box<Bucket>,
}

impl fmt::Debug for S3Store {
    // `Bucket`'s derived Debug dumps its HTTP client and option structs;
    // bucket and endpoint are what identify a store in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.bucket.region().endpoint())
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Validates the configuration and builds the client. Performs no I/O:
    /// call [`S3Store::ensure_bucket`] or [`PhotoStore::check`] to talk to
    /// the server.
    pub fn new(config: S3Config) -> Result<Self, StoreError> {
        validate_endpoint(&config.endpoint)?;
        for (name, value) in [
            ("region", &config.region),
            ("bucket", &config.bucket),
            ("access key", &config.access_key),
            ("secret key", &config.secret_key),
        ] {
            if value.trim().is_empty() {
                return Err(StoreError::Backend(format!("S3 {name} is not configured")));
            }
        }

        let region = Region::Custom {
            region: config.region,
            endpoint: config.endpoint,
        };
        let credentials = Credentials::new(
            Some(&config.access_key),
            Some(&config.secret_key),
            None,
            None,
            None,
        )
        // The error cannot echo the keys back (static credentials involve
        // no lookup), but it is still replaced rather than formatted.
        .map_err(|_| StoreError::Backend("invalid S3 credentials".to_owned()))?;
        let bucket = Bucket::new(&config.bucket, region, credentials)
            .map_err(|err| describe("configure bucket", None, err))?;
        let bucket = if config.path_style {
            bucket.with_path_style()
        } else {
            bucket
        };
        Ok(Self { bucket })
    }

    /// Creates the bucket unless it already exists.
    ///
    /// Creation is attempted directly instead of asking first: `Bucket::exists`
    /// lists all buckets, which needs a permission deployments often withhold
    /// and which some servers answer inconsistently.
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        // `Bucket::create` always injects the region as LocationConstraint
        // (skippable only via the RUST_S3_SKIP_LOCATION_CONSTRAINT env var),
        // and its us-east-1 exemption only matches `Region::UsEast1`, never a
        // `Region::Custom` endpoint. Sending the request ourselves lets the
        // constraint follow the S3 rule: present except for us-east-1.
        let mut config = BucketConfiguration::private();
        let region = self.bucket.region();
        if region.to_string() != DEFAULT_REGION {
            config.set_location_constraint(region);
        }
        let outcome = async {
            ReqwestRequest::new(&self.bucket, "", Command::CreateBucket { config })
                .await?
                .response_data(false)
                .await
        }
        .await;

        match outcome {
            // Not proof of creation: us-east-1 also answers 200 when we
            // already own the bucket.
            Ok(_) => {
                tracing::info!(bucket = %self.bucket.name(), "object storage bucket is ready");
                Ok(())
            }
            // BucketAlreadyExists normally means another account owns the
            // name, but some servers (older MinIO/moto) also use it for our
            // own bucket. Accepting it is safe: if the bucket really is
            // foreign, `check` fails with AccessDenied at readiness time.
            Err(S3Error::HttpFailWithBody(409, ref body))
                if matches!(
                    error_code(body),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                tracing::debug!(bucket = %self.bucket.name(), "object storage bucket already exists");
                Ok(())
            }
            Err(err) => Err(describe("create bucket", None, err)),
        }
    }
}

#[async_trait::async_trait]
impl PhotoStore for S3Store {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.bucket
            .put_object_with_content_type(key.as_str(), &bytes, content_type)
            .await
            .map_err(|err| describe("put", Some(key), err))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        match self.bucket.get_object(key.as_str()).await {
            Ok(response) => Ok(Some(response.into_bytes())),
            // With `fail-on-err`, a 404 arrives as an error. Only a missing
            // *key* means "no photo"; a missing bucket is misconfiguration
            // and must not silently turn every photo into a 404.
            Err(S3Error::HttpFailWithBody(404, ref body))
                if error_code(body) != Some("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(err) => Err(describe("get", Some(key), err)),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match self.bucket.delete_object(key.as_str()).await {
            Ok(_) => Ok(()),
            // S3 answers 204 for missing keys, but some compatible servers
            // answer 404 NoSuchKey; both mean the object is gone.
            Err(S3Error::HttpFailWithBody(404, ref body))
                if error_code(body) != Some("NoSuchBucket") =>
            {
                Ok(())
            }
            Err(err) => Err(describe("delete", Some(key), err)),
        }
    }

    /// Lists at most one key: cheap, read-only, and fails on a wrong
    /// endpoint, bad credentials or a missing bucket. Writing a probe object
    /// every few seconds would cost requests and, on versioned buckets,
    /// accumulate delete markers forever.
    async fn check(&self) -> Result<(), StoreError> {
        self.bucket
            .list_page(String::new(), None, None, None, Some(1))
            .await
            .map_err(|err| describe("check", None, err))?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}

/// Rejects endpoints that cannot work or that would put secrets into error
/// messages: request URLs are built from the endpoint, so credentials
/// embedded as `user:pass@` would be echoed wherever a URL is reported.
fn validate_endpoint(endpoint: &str) -> Result<(), StoreError> {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| {
            StoreError::Backend("S3 endpoint must start with http:// or https://".to_owned())
        })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(StoreError::Backend("S3 endpoint has no host".to_owned()));
    }
    if authority.contains('@') {
        return Err(StoreError::Backend(
            "S3 endpoint must not embed credentials; use the access/secret key settings".to_owned(),
        ));
    }
    Ok(())
}

/// The `<Code>` of an S3 XML error body, e.g. `NoSuchKey`.
fn error_code(body: &str) -> Option<&str> {
    xml_element(body, "Code")
}

fn xml_element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&close)?;
    Some(body[start..start + len].trim())
}

/// Turns a rust-s3 error into a message that is safe to log and return.
///
/// Error bodies are reduced to their `<Code>`/`<Message>`: a
/// SignatureDoesNotMatch body echoes the access key, the string to sign and
/// the signature. Transport errors lose their URL, which is only noise here
/// since endpoint and bucket are in the configuration.
fn describe(op: &str, key: Option<&ObjectKey>, err: S3Error) -> StoreError {
    let detail = match err {
        S3Error::HttpFailWithBody(status, body) => {
            match (error_code(&body), xml_element(&body, "Message")) {
                (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
                (Some(code), None) => format!("HTTP {status} {code}"),
                // Not an S3 error document (a proxy's HTML page, or HEAD
                // responses which have no body): the status is all we trust.
                _ => format!("HTTP {status}"),
            }
        }
        S3Error::Reqwest(err) => {
            let err = err.without_url();
            let mut detail = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            detail
        }
        S3Error::Credentials(_) => "credentials error".to_owned(),
        other => other.to_string(),
    };
    StoreError::Backend(match key {
        Some(key) => format!("S3 {op} {key}: {detail}"),
        None => format!("S3 {op}: {detail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> S3Config {
        S3Config {
            endpoint: "http://127.0.0.1:9000".to_owned(),
            region: DEFAULT_REGION.to_owned(),
            bucket: "civicsnap-photos".to_owned(),
            access_key: "AKIDEXAMPLE".to_owned(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            path_style: true,
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let cfg = config();
        let printed = format!("{cfg:?}");
        assert!(!printed.contains(&cfg.secret_key), "{printed}");
        assert!(printed.contains("***"));
        let store = format!("{:?}", S3Store::new(cfg.clone()).expect("valid config"));
        assert!(!store.contains(&cfg.secret_key), "{store}");
        assert!(!store.contains(&cfg.access_key), "{store}");
    }

    #[test]
    fn rejects_unusable_configuration() {
        type Mutation = fn(&mut S3Config);
        let cases: [(&str, Mutation); 6] = [
            ("scheme", |c| c.endpoint = "127.0.0.1:9000".to_owned()),
            ("no host", |c| c.endpoint = "http:///bucket".to_owned()),
            ("userinfo", |c| {
                c.endpoint = "http://user:pass@minio:9000".to_owned()
            }),
            ("bucket", |c| c.bucket = String::new()),
            ("access", |c| c.access_key = " ".to_owned()),
            ("secret", |c| c.secret_key = String::new()),
        ];
        for (name, mutate) in cases {
            let mut cfg = config();
            mutate(&mut cfg);
            let err = S3Store::new(cfg).expect_err(name);
            assert!(!err.to_string().contains("pass"), "{name}: {err}");
        }
    }

    #[test]
    fn error_bodies_are_reduced_to_code_and_message() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>\
            <Message>The request signature we calculated does not match.</Message>\
            <AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign>\
            <SignatureProvided>deadbeef</SignatureProvided></Error>";
        let err = describe("get", None, S3Error::HttpFailWithBody(403, body.to_owned()));
        let text = err.to_string();
        assert_eq!(
            text,
            "object storage error: S3 get: HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match."
        );

        let html = describe(
            "check",
            None,
            S3Error::HttpFailWithBody(502, "<html>bad gateway</html>".to_owned()),
        );
        assert_eq!(html.to_string(), "object storage error: S3 check: HTTP 502");
    }

    #[tokio::test]
    async fn unreachable_endpoint_fails_check_without_leaking() {
        let mut cfg = config();
        // Nothing listens on loopback port 1, so the connection is refused
        // without any traffic leaving the machine.
        cfg.endpoint = "http://127.0.0.1:1".to_owned();
        let store = S3Store::new(cfg.clone()).expect("valid config");
        let text = store
            .check()
            .await
            .expect_err("nothing listens on port 1")
            .to_string();
        assert!(!text.contains(&cfg.secret_key), "{text}");
        assert!(
            !text.contains("127.0.0.1:1/"),
            "URL should be stripped: {text}"
        );
    }

    /// Tests against a real S3-compatible server, enabled by
    /// `TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:9000` with
    /// `moto_server -H 127.0.0.1 -p 9000`). Each test gets its own bucket so
    /// they are independent of order and of each other.
    mod live {
        use super::*;
        use uuid::Uuid;

        /// `None` (after saying so) when no server is configured.
        fn live_config(test: &str) -> Option<S3Config> {
            let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
                eprintln!("skipping {test}: TEST_S3_ENDPOINT is not set");
                return None;
            };
            let var = |name: &str, default: &str| {
                std::env::var(name).unwrap_or_else(|_| default.to_owned())
            };
            Some(S3Config {
                endpoint,
                region: DEFAULT_REGION.to_owned(),
                bucket: format!("civicsnap-test-{}", Uuid::new_v4().simple()),
                access_key: var("TEST_S3_ACCESS_KEY", "test"),
                secret_key: var("TEST_S3_SECRET_KEY", "test"),
                path_style: true,
            })
        }

        async fn live_store(test: &str) -> Option<S3Store> {
            let store = S3Store::new(live_config(test)?).expect("valid config");
            store.ensure_bucket().await.expect("create test bucket");
            Some(store)
        }

        fn key(raw: &str) -> ObjectKey {
            ObjectKey::parse(raw).expect("test key is valid")
        }

        #[tokio::test]
        async fn ensure_bucket_is_idempotent() {
            let Some(store) = live_store("ensure_bucket_is_idempotent").await else {
                return;
            };
            store.ensure_bucket().await.expect("second ensure_bucket");
            store.check().await.expect("check after ensure_bucket");
            assert_eq!(store.kind(), "s3");
        }

        #[tokio::test]
        async fn ensure_bucket_in_other_region() {
            let Some(mut cfg) = live_config("ensure_bucket_in_other_region") else {
                return;
            };
            cfg.region = "eu-central-1".to_owned();
            let store = S3Store::new(cfg).expect("valid config");
            store
                .ensure_bucket()
                .await
                .expect("create with location constraint");
            store.ensure_bucket().await.expect("second ensure_bucket");
            store.check().await.expect("check");
        }

        #[tokio::test]
        async fn put_get_delete_roundtrip() {
            let Some(store) = live_store("put_get_delete_roundtrip").await else {
                return;
            };
            let k = ObjectKey::for_photo(Uuid::new_v4(), "display").expect("valid key");
            let body = Bytes::from(vec![0xFFu8, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
            store
                .put(&k, body.clone(), "image/jpeg")
                .await
                .expect("put");
            assert_eq!(store.get(&k).await.expect("get"), Some(body));

            let head = store
                .bucket
                .head_object(k.as_str())
                .await
                .expect("head object");
            assert_eq!(head.0.content_type.as_deref(), Some("image/jpeg"));

            store.delete(&k).await.expect("delete");
            assert_eq!(store.get(&k).await.expect("get after delete"), None);
        }

        #[tokio::test]
        async fn missing_objects() {
            let Some(store) = live_store("missing_objects").await else {
                return;
            };
            let k = key("photos/00/never-written/original.jpg");
            assert_eq!(store.get(&k).await.expect("get missing"), None);
            store.delete(&k).await.expect("delete missing");
            store.delete(&k).await.expect("delete missing again");
        }

        #[tokio::test]
        async fn missing_bucket_is_an_error_not_a_missing_object() {
            let Some(cfg) = live_config("missing_bucket_is_an_error_not_a_missing_object") else {
                return;
            };
            // Deliberately no ensure_bucket.
            let store = S3Store::new(cfg).expect("valid config");
            let k = key("a.jpg");
            let err = store.get(&k).await.expect_err("get from missing bucket");
            assert!(err.to_string().contains("NoSuchBucket"), "{err}");
            assert!(store.check().await.is_err());
            store
                .put(&k, Bytes::from_static(b"x"), "image/jpeg")
                .await
                .expect_err("put into missing bucket");
        }
    }
}
