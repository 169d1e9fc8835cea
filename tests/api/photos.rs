use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use civicsnap::domain::role::Role;
use civicsnap::objects::{ObjectKey, PhotoStore, StoreError};
use civicsnap::state::now;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// True when the JPEG has an APP1 (EXIF/XMP) segment or the bytes mention GPS.
fn carries_metadata(jpeg: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            break; // start of scan: no more header segments
        }
        if marker == 0xE1 {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        i += 2 + len;
    }
    jpeg.windows(4).any(|w| w == b"Exif") || jpeg.windows(3).any(|w| w == b"GPS")
}

fn jpeg_size(jpeg: &[u8]) -> (u32, u32) {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    decoder.read_info().unwrap();
    let info = decoder.info().unwrap();
    (u32::from(info.width), u32::from(info.height))
}

#[tokio::test]
async fn a_phone_photo_is_read_stripped_and_served() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let original = fixture("street-12mp.jpg");
    assert!(carries_metadata(&original), "the fixture itself has EXIF");
    let response = app.upload(&citizen.token, original, "IMG_0001.JPG").await;
    assert_eq!(response.status(), 201);
    let photo: Value = response.json().await.unwrap();
    assert_eq!(
        (photo["width"].as_i64(), photo["height"].as_i64()),
        (Some(4000), Some(3000))
    );
    assert!(
        (photo["gps"]["lat"].as_f64().unwrap() - 31.8753).abs() < 1e-3,
        "{photo}"
    );
    assert!((photo["gps"]["lon"].as_f64().unwrap() - 120.5539).abs() < 1e-3);
    // 09:41:27 in +08:00.
    assert_eq!(photo["taken_at"], "2026-05-12T01:41:27Z");
    assert_eq!(photo["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(photo["phash"].as_str().unwrap().len(), 16);

    let display = app
        .get(photo["display_url"].as_str().unwrap(), Some(&citizen.token))
        .await;
    assert_eq!(display.status(), 200);
    assert_eq!(display.headers()["content-type"], "image/jpeg");
    // Never a shared cache: the copy is for this caller only, and it never changes.
    assert_eq!(
        display.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    let etag = display.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = display.bytes().await.unwrap();
    assert_eq!(jpeg_size(&bytes), (1280, 960));
    assert!(
        !carries_metadata(&bytes),
        "display copy must carry no metadata"
    );

    let thumb = app
        .get(
            photo["thumbnail_url"].as_str().unwrap(),
            Some(&citizen.token),
        )
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(jpeg_size(&thumb), (320, 240));
    assert!(!carries_metadata(&thumb));

    let cached = app
        .client
        .get(app.url(photo["display_url"].as_str().unwrap()))
        .bearer_auth(&citizen.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(
        cached.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn orientation_is_applied_and_small_photos_are_not_upscaled() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo: Value = app
        .upload(&citizen.token, fixture("rotated-exif6.jpg"), "r.jpg")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (photo["width"].as_i64(), photo["height"].as_i64()),
        (Some(300), Some(400))
    );
    let display = app
        .get(photo["display_url"].as_str().unwrap(), Some(&citizen.token))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(jpeg_size(&display), (300, 400));

    let png: Value = app
        .upload(&citizen.token, fixture("no-exif.png"), "p.png")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(png["gps"], Value::Null);
    assert_eq!(png["taken_at"], Value::Null);
    assert_eq!(png["width"], 640);
}

#[tokio::test]
async fn photos_are_private_to_the_uploader_and_staff() {
    let app = spawn_app().await;
    let owner = app.citizen().await;
    let stranger = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let id = app.photo(&owner.token, jpeg(64, 48)).await;
    let path = format!("/api/v1/photos/{id}/display");
    assert_problem(
        app.get(&path, Some(&stranger.token)).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.get(&path, Some(&operator.token)).await.status(), 200);
    assert_problem(app.get(&path, None).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn unit_staff_see_the_photos_of_their_units_cases_only() {
    let app = spawn_demo_app_with(|s| s.workflow.auto_dispatch = false).await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, "DEPT-CGJ").await;
    let elsewhere = app.user_of(Role::UnitLead, "SO-320582001").await;
    let report = app.file_report(&reporter.token).await;
    let case: Uuid = report["id"].as_str().unwrap().parse().unwrap();
    let photo = report["photos"][0]["id"].as_str().unwrap().to_owned();
    let paths = ["display", "thumbnail"].map(|r| format!("/api/v1/photos/{photo}/{r}"));

    for path in &paths {
        assert_problem(app.get(path, Some(&lead.token)).await, 404, "not_found").await;
    }
    for mut action in [
        json!({"action": "file"}),
        json!({"action": "dispatch", "lead_unit": "DEPT-CGJ"}),
    ] {
        let loaded = app.state.workflow.case(case).await.unwrap().unwrap();
        action["version"] = json!(loaded.version);
        let response = app
            .post_json(
                &format!("/api/v1/cases/{case}/actions"),
                Some(&operator.token),
                &action,
            )
            .await;
        assert_eq!(response.status(), 200, "{action}");
    }
    for path in &paths {
        assert_eq!(
            app.get(path, Some(&lead.token)).await.status(),
            200,
            "{path}"
        );
        assert_problem(
            app.get(path, Some(&elsewhere.token)).await,
            404,
            "not_found",
        )
        .await;
    }

    // Of photos in no case yet, unit staff see only their own.
    let loose = app.photo(&reporter.token, jpeg(32, 32)).await;
    let own = app.photo(&lead.token, jpeg(32, 32)).await;
    assert_problem(
        app.get(
            &format!("/api/v1/photos/{loose}/display"),
            Some(&lead.token),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/photos/{own}/display"), Some(&lead.token))
            .await
            .status(),
        200
    );
}

/// Polls `gauge` until it reads `value`, for at most a few seconds.
async fn wait_for(gauge: &prometheus_client::metrics::gauge::Gauge, value: i64) -> bool {
    for _ in 0..100 {
        if gauge.get() == value {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A complete upload request, written by hand so the test owns the socket.
fn raw_upload(token: &str, photo: &[u8]) -> Vec<u8> {
    let mut body =
        b"--cut\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\
                     Content-Type: image/jpeg\r\n\r\n"
            .to_vec();
    body.extend_from_slice(photo);
    body.extend_from_slice(b"\r\n--cut--\r\n");
    let mut request = format!(
        "POST /api/v1/photos HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

#[tokio::test]
async fn an_upload_abandoned_in_the_queue_is_counted_out() {
    use tokio::io::AsyncWriteExt;

    let app = spawn_app_with(|s| s.photos.processing_slots = 1).await;
    let citizen = app.citizen().await;
    // Holding the only slot keeps the upload waiting in the queue.
    let slot = app.state.photo_workers.acquire().await;
    let address = app.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket
        .write_all(&raw_upload(&citizen.token, &jpeg(64, 48)))
        .await
        .unwrap();
    let queue = &app.state.metrics.photo_queue;
    assert!(wait_for(queue, 1).await, "the upload is queued");
    // The phone drops off the network: the connection is reset, and the server
    // drops the handler where it waits.
    #[allow(deprecated)] // a zero linger closes at once, which is the point here
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
    assert!(wait_for(queue, 0).await, "queue depth {}", queue.get());
    drop(slot);
    assert_eq!(app.state.metrics.photos_in_progress.get(), 0);
}

#[tokio::test]
async fn only_reporting_roles_upload() {
    let app = spawn_app().await;
    let operator = app.user(Role::Operator).await;
    assert_problem(
        app.upload(&operator.token, jpeg(32, 32), "a.jpg").await,
        403,
        "forbidden",
    )
    .await;
    let inspector = app.user(Role::Inspector).await;
    assert_eq!(
        app.upload(&inspector.token, jpeg(32, 32), "a.jpg")
            .await
            .status(),
        201
    );
}

/// A PNG header claiming 100000×100000 pixels and nothing else.
fn png_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(b"IHDR");
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn bad_uploads_get_clear_answers_and_store_nothing() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let good = jpeg(400, 300);
    let truncated = good[..good.len() / 2].to_vec();
    let mut heic = vec![0, 0, 0, 0x18];
    heic.extend_from_slice(b"ftypheic");
    heic.extend_from_slice(&[0; 32]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("truncated.jpg", truncated, 422, "photo_unreadable"),
        ("bomb.png", png_bomb(), 422, "photo_too_many_pixels"),
        (
            "notes.jpg",
            b"this is a text file, not a photo\n".to_vec(),
            415,
            "unsupported_media_type",
        ),
        ("photo.heic", heic, 415, "unsupported_media_type"),
        ("empty.jpg", Vec::new(), 422, "empty_upload"),
        (
            "huge.jpg",
            vec![0xFF; 16 * 1024 * 1024],
            413,
            "photo_too_large",
        ),
    ];
    for (name, bytes, status, code) in cases {
        let body =
            assert_problem(app.upload(&citizen.token, bytes, name).await, status, code).await;
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: {body}"
        );
    }
    let body = assert_problem(
        app.upload(&citizen.token, b"hello".to_vec(), "x.txt").await,
        415,
        "unsupported_media_type",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("JPEG, PNG, WebP"),
        "{body}"
    );
    // Nothing was kept.
    let stale = app
        .state
        .repo
        .stale_unattached_photos(now() + chrono::Duration::days(1), 100)
        .await
        .unwrap();
    assert!(stale.is_empty(), "{stale:?}");
}

#[tokio::test]
async fn multipart_mistakes_are_problems() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let form = reqwest::multipart::Form::new().text("note", "no file here");
    let r = app.upload_form(&citizen.token, form).await;
    assert_problem(r, 422, "missing_file").await;
    let r = app
        .client
        .post(app.url("/api/v1/photos"))
        .bearer_auth(&citizen.token)
        .body("raw bytes")
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "invalid_multipart").await;
}

#[tokio::test]
async fn unattached_photos_are_removed_after_a_day() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let kept = app.photo(&citizen.token, jpeg(64, 48)).await;
    let dropped = app.photo(&citizen.token, jpeg(64, 48)).await;
    let report = app
        .post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &report_body(&[kept]),
        )
        .await;
    assert_eq!(report.status(), 201);
    let dropped_record = app.state.repo.photo(dropped).await.unwrap().unwrap();

    let day = Duration::from_secs(24 * 3600);
    let removed = civicsnap::jobs::photo_cleanup::run_once(
        app.state.repo.as_ref(),
        app.state.photos.as_ref(),
        now(),
        day,
    )
    .await
    .unwrap();
    assert_eq!(removed, 0, "nothing is a day old yet");
    let later = now() + chrono::Duration::hours(25);
    let removed = civicsnap::jobs::photo_cleanup::run_once(
        app.state.repo.as_ref(),
        app.state.photos.as_ref(),
        later,
        day,
    )
    .await
    .unwrap();
    assert_eq!(removed, 1);
    assert!(app.state.repo.photo(dropped).await.unwrap().is_none());
    for image in [&dropped_record.display, &dropped_record.thumbnail] {
        let key = ObjectKey::parse(&image.key).unwrap();
        assert!(
            app.state.photos.get(&key).await.unwrap().is_none(),
            "object {} deleted too",
            image.key
        );
    }
    assert!(app.state.repo.photo(kept).await.unwrap().is_some());
    assert_eq!(
        app.get(
            &format!("/api/v1/photos/{kept}/display"),
            Some(&citizen.token)
        )
        .await
        .status(),
        200
    );
}

/// The app's photo store, except that deletes fail while `broken` is set, as
/// during an S3 outage.
struct DeletesFail {
    inner: Arc<dyn PhotoStore>,
    broken: AtomicBool,
}

#[async_trait::async_trait]
impl PhotoStore for DeletesFail {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.inner.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("storage is down".to_owned()));
        }
        self.inner.delete(key).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// A cleanup pass that cannot delete a stale photo's objects must leave a way
/// to delete them later: otherwise they are kept, unreferenced, forever.
#[tokio::test]
async fn stale_photo_objects_are_deleted_once_the_store_recovers() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let dropped = app.photo(&citizen.token, jpeg(64, 48)).await;
    let record = app.state.repo.photo(dropped).await.unwrap().unwrap();
    let store = DeletesFail {
        inner: app.state.photos.clone(),
        broken: AtomicBool::new(true),
    };
    let later = now() + chrono::Duration::hours(25);
    let day = Duration::from_secs(24 * 3600);
    let cleanup =
        || civicsnap::jobs::photo_cleanup::run_once(app.state.repo.as_ref(), &store, later, day);
    // Whatever the outage pass reports, the next one must finish the job.
    let _ = cleanup().await;
    store.broken.store(false, Ordering::SeqCst);
    cleanup().await.unwrap();
    assert!(app.state.repo.photo(dropped).await.unwrap().is_none());
    for image in [&record.display, &record.thumbnail] {
        let key = ObjectKey::parse(&image.key).unwrap();
        assert!(
            app.state.photos.get(&key).await.unwrap().is_none(),
            "object {} left behind",
            image.key
        );
    }
}

/// The byte limit bounds the whole upload, not only its `file` field: other
/// fields are read too, so without a bound a client could stream without end.
#[tokio::test]
async fn fields_beside_the_file_count_against_the_upload_limit() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let form = reqwest::multipart::Form::new()
        .part(
            "padding",
            reqwest::multipart::Part::bytes(vec![b'x'; 16 * 1024 * 1024]),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(jpeg(64, 48)).file_name("photo.jpg"),
        );
    let response = app.upload_form(&citizen.token, form).await;
    assert_problem(response, 413, "body_too_large").await;
}
