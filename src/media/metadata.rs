//! The few EXIF fields the service uses: where and when the photo was taken, and
//! how to turn it upright.
//!
//! EXIF is written by thousands of camera firmwares and edited by apps that get it
//! wrong, so every field is optional and anything malformed is dropped rather than
//! failing the upload: the photo is the evidence, its metadata is a convenience.

use std::io::Cursor;

use chrono::{FixedOffset, NaiveDate};
use exif::{Exif, In, Tag, Value};

use super::{CaptureTime, GpsPoint, SourceFormat};

#[derive(Debug, Default)]
pub(super) struct PhotoMetadata {
    pub taken_at: Option<CaptureTime>,
    pub gps: Option<GpsPoint>,
    /// EXIF orientation, 1–8; 1 when absent or invalid.
    pub orientation: u8,
}

/// `jpeg_exif` is the APP1 payload already located by the JPEG header walk; for the
/// other formats the EXIF chunk is found by kamadak-exif's container parser.
pub(super) fn read(bytes: &[u8], format: SourceFormat, jpeg_exif: Option<&[u8]>) -> PhotoMetadata {
    let mut reader = exif::Reader::new();
    // Keep whatever parsed before the first broken IFD entry; a damaged maker note
    // should not cost us the GPS fix.
    reader.continue_on_error(true);
    let parsed = match (format, jpeg_exif) {
        (SourceFormat::Jpeg, Some(raw)) => reader.read_raw(raw.to_vec()),
        (SourceFormat::Jpeg, None) => return PhotoMetadata::with_defaults(),
        (SourceFormat::Png | SourceFormat::Webp, _) => {
            reader.read_from_container(&mut Cursor::new(bytes))
        }
    };
    let exif = match parsed.or_else(|e| e.distill_partial_result(|_| {})) {
        Ok(exif) => exif,
        Err(error) => {
            tracing::debug!(%error, "ignoring unreadable EXIF");
            return PhotoMetadata::with_defaults();
        }
    };
    PhotoMetadata {
        taken_at: capture_time(&exif),
        gps: gps(&exif),
        orientation: orientation(&exif),
    }
}

impl PhotoMetadata {
    fn with_defaults() -> Self {
        Self {
            orientation: 1,
            ..Self::default()
        }
    }
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

fn orientation(exif: &Exif) -> u8 {
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .and_then(|value| u8::try_from(value).ok())
        .filter(|value| (1..=8).contains(value))
        .unwrap_or(1)
}

fn capture_time(exif: &Exif) -> Option<CaptureTime> {
    let mut stamp = exif::DateTime::from_ascii(ascii(exif, Tag::DateTimeOriginal)?).ok()?;
    let local = NaiveDate::from_ymd_opt(
        i32::from(stamp.year),
        u32::from(stamp.month),
        u32::from(stamp.day),
    )?
    .and_hms_opt(
        u32::from(stamp.hour),
        u32::from(stamp.minute),
        u32::from(stamp.second),
    )?;
    if let Some(raw) = ascii(exif, Tag::OffsetTimeOriginal) {
        // A malformed offset leaves `stamp.offset` unset, and the caller falls back
        // to the city's zone, which is right far more often than not.
        let _ = stamp.parse_offset(raw);
    }
    let offset = stamp
        .offset
        .and_then(|minutes| FixedOffset::east_opt(i32::from(minutes) * 60));
    Some(CaptureTime { local, offset })
}

fn gps(exif: &Exif) -> Option<GpsPoint> {
    let lat = signed_degrees(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, *b"NS", 90.0)?;
    let lon = signed_degrees(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, *b"EW", 180.0)?;
    // Phones without a fix write zeros rather than omitting the tags; a report
    // pinned to the Gulf of Guinea is worse than one without a location.
    if lat == 0.0 && lon == 0.0 {
        return None;
    }
    Some(GpsPoint { lat, lon })
}

/// Degrees/minutes/seconds to signed decimal degrees. The hemisphere reference is
/// required: guessing it would silently move a report to the other side of the world.
fn signed_degrees(
    exif: &Exif,
    tag: Tag,
    ref_tag: Tag,
    [positive_ref, negative_ref]: [u8; 2],
    max: f64,
) -> Option<f64> {
    let Value::Rational(dms) = &exif.get_field(tag, In::PRIMARY)?.value else {
        return None;
    };
    let [degrees, minutes, seconds] = dms.get(..3)? else {
        return None;
    };
    let value = degrees.to_f64() + minutes.to_f64() / 60.0 + seconds.to_f64() / 3600.0;
    // Zero denominators yield NaN or infinity, which this range check also rejects.
    if !(0.0..=max).contains(&value) {
        return None;
    }
    match ascii(exif, ref_tag)?.first()?.to_ascii_uppercase() {
        r if r == positive_ref => Some(value),
        r if r == negative_ref => Some(-value),
        _ => None,
    }
}
