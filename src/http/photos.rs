//! Photo intake (one photo a request, so a phone on a bad network retries small
//! pieces) and serving of the stripped copies.

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use actix_multipart::{Multipart, MultipartError};
use actix_web::http::header::{self, EntityTag, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::cases::{Access, access, workflow_error};
use crate::auth::AuthUser;
use crate::domain::geo::LatLon;
use crate::error::ApiError;
use crate::limits::CitizenWork;
use crate::media::{self, PhotoError, PhotoLimits, ProcessedPhoto};
use crate::objects::ObjectKey;
use crate::state::{AppState, now};
use crate::store::{PhotoRecord, StoredImage};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload_photo)
        .service(photo_display)
        .service(photo_thumbnail);
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct PhotoView {
    pub id: Uuid,
    /// Size of the photo as displayed (after EXIF orientation).
    pub width: i64,
    pub height: i64,
    /// Capture time from EXIF, when the camera recorded one.
    pub taken_at: Option<DateTime<Utc>>,
    /// Capture position from EXIF GPS (WGS84), when present.
    pub gps: Option<LatLon>,
    /// SHA-256 of the uploaded bytes.
    pub sha256: String,
    /// 64-bit perceptual hash, 16 hex digits.
    pub phash: String,
    pub display_url: String,
    pub thumbnail_url: String,
    pub created_at: DateTime<Utc>,
}

impl PhotoView {
    /// Only the uploader ever sees this: it carries the photo's own GPS.
    pub fn of(photo: &PhotoRecord) -> PhotoView {
        PhotoView {
            id: photo.id,
            width: photo.width,
            height: photo.height,
            taken_at: photo.taken_at,
            gps: photo.gps,
            sha256: photo.sha256.clone(),
            phash: photo.phash.clone(),
            display_url: display_url(photo.id),
            thumbnail_url: thumbnail_url(photo.id),
            created_at: photo.created_at,
        }
    }
}

pub fn display_url(id: Uuid) -> String {
    format!("/api/v1/photos/{id}/display")
}

pub fn thumbnail_url(id: Uuid) -> String {
    format!("/api/v1/photos/{id}/thumbnail")
}

/// The upload form: one file in the field `file`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the multipart body for the OpenAPI document only
struct PhotoUpload {
    /// A JPEG, PNG or WebP photo.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

fn multipart_error(err: MultipartError) -> ApiError {
    ApiError::bad_request(
        "invalid_multipart",
        format!("could not read the multipart upload: {err}"),
    )
}

/// What the fields other than `file` may hold together. They are read to reach
/// the file, so without a bound one request could stream without end.
const OTHER_FIELDS_LIMIT: usize = 64 * 1024;

/// Reads the `file` field, refusing as soon as it, or the other fields, grow
/// past their limits.
async fn read_file_field(mut form: Multipart, max_bytes: usize) -> Result<Bytes, ApiError> {
    let mut other_bytes = 0;
    while let Some(mut field) = form.try_next().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            // Drain unknown fields without keeping them.
            while let Some(chunk) = field.try_next().await.map_err(multipart_error)? {
                other_bytes += chunk.len();
                if other_bytes > OTHER_FIELDS_LIMIT {
                    return Err(ApiError::body_too_large(max_bytes + OTHER_FIELDS_LIMIT));
                }
            }
            continue;
        }
        let mut buffer = BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if buffer.len() + chunk.len() > max_bytes {
                return Err(PhotoError::TooLarge {
                    size: buffer.len() + chunk.len(),
                    limit: max_bytes,
                }
                .into());
            }
            buffer.extend_from_slice(&chunk);
        }
        if buffer.is_empty() {
            return Err(PhotoError::Empty.into());
        }
        return Ok(buffer.freeze());
    }
    Err(ApiError::invalid_field(
        "file",
        "missing_file",
        "send the photo as multipart/form-data in a field named `file`",
    ))
}

impl From<PhotoError> for ApiError {
    fn from(err: PhotoError) -> ApiError {
        match err {
            PhotoError::TooLarge { .. } => ApiError::PayloadTooLarge {
                code: "photo_too_large",
                detail: err.to_string(),
            },
            PhotoError::UnsupportedType { .. } => ApiError::UnsupportedMediaType(err.to_string()),
            PhotoError::Empty => ApiError::invalid_field("file", "empty_upload", err.to_string()),
            PhotoError::TooManyPixels { .. } => {
                ApiError::invalid_field("file", "photo_too_many_pixels", err.to_string())
            }
            PhotoError::Corrupt(_) => {
                ApiError::invalid_field("file", "photo_unreadable", err.to_string())
            }
        }
    }
}

/// Counts one upload in a gauge while it lives. A reset connection or a server
/// shutdown drops the handler's future mid-await, so only a drop can be sure to
/// count it out.
struct Counted<'a>(&'a Gauge<i64, AtomicI64>);

impl<'a> Counted<'a> {
    fn new(gauge: &'a Gauge<i64, AtomicI64>) -> Counted<'a> {
        gauge.inc();
        Counted(gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Decodes on a photo worker, one photo per worker at a time.
async fn process(state: &AppState, bytes: Bytes) -> Result<ProcessedPhoto, ApiError> {
    let queued = Counted::new(&state.metrics.photo_queue);
    let worker = state.photo_workers.acquire().await;
    drop(queued);
    let _in_progress = Counted::new(&state.metrics.photos_in_progress);
    let limits = PhotoLimits {
        max_bytes: state.settings.photos.max_bytes,
        max_pixels: state.settings.photos.max_pixels,
    };
    let started = Instant::now();
    let outcome = worker
        .run(move || media::process_photo(&bytes, &limits))
        .await;
    state.metrics.observe_photo(started.elapsed());
    Ok(outcome.map_err(ApiError::internal)??)
}

fn etag_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..16])
}

/// Uploads one photo. EXIF is read (GPS, capture time, orientation) and then
/// stripped: the copies anyone is served carry no metadata at all.
#[utoipa::path(
    tag = "photos",
    request_body(content = inline(PhotoUpload), content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 201, body = PhotoView),
        (status = 400, description = "Not a readable multipart upload (`invalid_multipart`)", body = crate::error::Problem),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 413, description = "Larger than the byte limit", body = crate::error::Problem),
        (status = 415, description = "Not JPEG, PNG or WebP", body = crate::error::Problem),
        (status = 422, description = "Empty, unreadable, or too many pixels", body = crate::error::Problem),
        (status = 429, description = "This citizen's uploads for the hour are used up", body = crate::error::Problem),
        (status = 503, description = "Photo storage failed", body = crate::error::Problem),
    )
)]
#[post("/api/v1/photos")]
async fn upload_photo(
    user: AuthUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    user.require(|r| r.may_upload_photos(), "this role cannot upload photos")?;
    state
        .citizen_limits
        .spend(user.id, user.role, CitizenWork::Photo)?;
    let form = Multipart::new(req.headers(), payload);
    let bytes = read_file_field(form, state.settings.photos.max_bytes).await?;
    let byte_size = bytes.len() as i64;
    let photo = process(&state, bytes).await?;

    let id = Uuid::now_v7();
    let display_key = ObjectKey::for_photo(id, "display").map_err(ApiError::internal)?;
    let thumb_key = ObjectKey::for_photo(id, "thumbnail").map_err(ApiError::internal)?;
    let display = StoredImage {
        key: display_key.to_string(),
        width: i64::from(photo.display.width),
        height: i64::from(photo.display.height),
        etag: etag_of(&photo.display.bytes),
    };
    let thumbnail = StoredImage {
        key: thumb_key.to_string(),
        width: i64::from(photo.thumbnail.width),
        height: i64::from(photo.thumbnail.height),
        etag: etag_of(&photo.thumbnail.bytes),
    };
    let (stored_display, stored_thumb) = tokio::join!(
        state
            .photos
            .put(&display_key, Bytes::from(photo.display.bytes), "image/jpeg"),
        state
            .photos
            .put(&thumb_key, Bytes::from(photo.thumbnail.bytes), "image/jpeg"),
    );
    let record = PhotoRecord {
        id,
        owner_id: user.id,
        case_id: None,
        source_type: photo.format.mime().to_owned(),
        width: i64::from(photo.width),
        height: i64::from(photo.height),
        taken_at: photo.taken_at.as_ref().and_then(|t| t.to_utc(state.tz)),
        gps: photo.gps.map(|g| LatLon {
            lat: g.lat,
            lon: g.lon,
        }),
        sha256: photo.sha256,
        phash: format!("{:016x}", photo.phash),
        byte_size,
        display,
        thumbnail,
        created_at: now(),
    };
    let stored = match (stored_display, stored_thumb) {
        (Ok(()), Ok(())) => state
            .repo
            .insert_photo(&record)
            .await
            .map_err(ApiError::from),
        (Err(e), _) | (_, Err(e)) => Err(ApiError::unavailable("photo storage", e)),
    };
    if let Err(e) = stored {
        // No row points at these objects: remove them rather than leak storage.
        let _ = tokio::join!(
            state.photos.delete(&display_key),
            state.photos.delete(&thumb_key)
        );
        return Err(e);
    }
    tracing::info!(photo = %id, bytes = byte_size, "photo stored");
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, display_url(id)))
        .json(PhotoView::of(&record)))
}

#[derive(Clone, Copy)]
enum Rendition {
    Display,
    Thumbnail,
}

/// The uploader, and whoever may see the photo's case (`cases::access`): the
/// centre's staff, the units assigned to it, and its reporter, whose report
/// lists the units' after-photos while the case stands reported done. Of photos
/// not yet in a case, unit staff see only their own uploads; the centre's staff
/// see them all.
async fn may_see(state: &AppState, user: &AuthUser, photo: &PhotoRecord) -> Result<bool, ApiError> {
    if photo.owner_id == user.id {
        return Ok(true);
    }
    if user.role.is_staff() && !user.role.is_unit_role() {
        return Ok(true);
    }
    let Some(case) = photo.case_id else {
        return Ok(false);
    };
    let case = state.workflow.case(case).await.map_err(workflow_error)?;
    Ok(case.is_some_and(|case| match access(user, &case) {
        // Not the reporter's own upload, so a unit's proof.
        Some(Access::Reporter) => case.state.shows_units_proof(),
        Some(_) => true,
        None => false,
    }))
}

async fn serve(
    user: AuthUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: Uuid,
    rendition: Rendition,
) -> Result<HttpResponse, ApiError> {
    let photo = state
        .repo
        .photo(id)
        .await?
        .ok_or(ApiError::NotFound("photo"))?;
    // Anyone else gets the same answer as for a photo that does not exist.
    if !may_see(&state, &user, &photo).await? {
        return Err(ApiError::NotFound("photo"));
    }
    let image = match rendition {
        Rendition::Display => &photo.display,
        Rendition::Thumbnail => &photo.thumbnail,
    };
    let etag = EntityTag::new_strong(image.etag.clone());
    let cache = (
        header::CACHE_CONTROL,
        "private, max-age=31536000, immutable",
    );
    if let Ok(IfNoneMatch::Items(tags)) = <IfNoneMatch as header::Header>::parse(&req)
        && tags.iter().any(|t| t.weak_eq(&etag))
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header(cache)
            .finish());
    }
    let key = ObjectKey::parse(&image.key).map_err(ApiError::internal)?;
    let bytes = state
        .photos
        .get(&key)
        .await
        .map_err(|e| ApiError::unavailable("photo storage", e))?
        .ok_or(ApiError::NotFound("photo"))?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::ETAG, etag))
        .insert_header(cache)
        .body(bytes))
}

/// The display copy (long edge at most 1280 px, JPEG, no metadata). For the
/// uploader, the centre's staff, unit staff of a unit the photo's case is
/// assigned to, and the case's reporter once the case stands reported done
/// (`awaiting_check`, `closed`, `archived`); 404 for anyone else.
#[utoipa::path(
    tag = "photos",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "Matches If-None-Match"),
        (status = 404, body = crate::error::Problem),
        (status = 503, description = "Photo storage failed", body = crate::error::Problem),
    )
)]
#[get("/api/v1/photos/{id}/display")]
async fn photo_display(
    user: AuthUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    serve(user, state, req, id.into_inner(), Rendition::Display).await
}

/// The thumbnail (long edge at most 320 px, JPEG, no metadata). Seen by whoever
/// may see the display copy.
#[utoipa::path(
    tag = "photos",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "Matches If-None-Match"),
        (status = 404, body = crate::error::Problem),
        (status = 503, description = "Photo storage failed", body = crate::error::Problem),
    )
)]
#[get("/api/v1/photos/{id}/thumbnail")]
async fn photo_thumbnail(
    user: AuthUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    serve(user, state, req, id.into_inner(), Rendition::Thumbnail).await
}
