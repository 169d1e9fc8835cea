//! Turns an uploaded photo into what the service stores and serves: a display copy
//! and a thumbnail with all metadata stripped, plus the metadata we do want (where
//! and when it was taken) and hashes for de-duplication.
//!
//! Pure and synchronous; the service runs it on [`PhotoWorkers`]. The order of checks is
//! a security property: size, real type and declared pixel count are all refused
//! before any decoder allocates, so a decompression bomb costs microseconds.

mod codec;
mod jpeg_header;
mod metadata;
#[cfg(feature = "turbojpeg")]
mod planar;
mod raster;
mod sniff;
#[cfg(test)]
mod tests;
mod workers;

use std::io::Cursor;
use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use fast_image_resize::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use image_hasher::{HashAlg, Hasher, HasherConfig};
use sha2::{Digest, Sha256};

use codec::Decoded;
use raster::{Raster, RgbImage};
pub use workers::{JobPanicked, PhotoWorkers};

/// Long edge of the copy shown in the case view; large enough for a full-width
/// desktop view, small enough for citizens on mobile data.
const DISPLAY_EDGE: u32 = 1280;
const THUMBNAIL_EDGE: u32 = 320;
/// Quality 82 is where 4:2:0 photo artefacts stop being visible at display size;
/// thumbnails are viewed small enough that 75 loses nothing noticeable.
const DISPLAY_QUALITY: u8 = 82;
/// Catmull-Rom rather than Lanczos3 for the display copy: the JPEG backends do the
/// bulk of the reduction in the DCT, so the remaining factor is below 2×, where
/// the two look the same, Catmull-Rom's narrower kernel is about a third cheaper,
/// and it rings less around high-contrast edges such as signs.
const DISPLAY_FILTER: FilterType = FilterType::CatmullRom;
/// The thumbnail is a ~4× reduction of the display copy, where a wide sharp kernel
/// costs as much as the display resize itself; a triangle filter stretched over
/// the reduction still anti-aliases properly at half the taps, and any softness
/// is invisible at 320 px.
const THUMBNAIL_FILTER: FilterType = FilterType::Bilinear;
const THUMBNAIL_QUALITY: u8 = 75;
/// Each scan of a progressive JPEG is a decoder pass over the whole image, about
/// 8 ms at 50 MP, and a scan of a smooth image can take under 100 bytes, so a
/// 15 MiB upload could hold minutes of decoding. Encoders write 1 scan (baseline)
/// or about 10 (progressive); 100 is libjpeg-turbo's suggested bound.
const MAX_JPEG_SCANS: usize = 100;

#[derive(Debug, Clone)]
pub struct PhotoLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
}

impl Default for PhotoLimits {
    /// 15 MiB covers a 50 MP phone JPEG at high quality; 50 MP covers the largest
    /// phone sensors while capping decode memory at about 200 MB.
    fn default() -> Self {
        Self {
            max_bytes: 15 * 1024 * 1024,
            max_pixels: 50_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
}

impl SourceFormat {
    pub fn mime(&self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }
}

/// WGS 84 decimal degrees, south and west negative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsPoint {
    pub lat: f64,
    pub lon: f64,
}

/// When the shutter fired, as the camera's clock recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTime {
    /// Wall-clock time; EXIF stores no zone in DateTimeOriginal itself.
    pub local: NaiveDateTime,
    /// From OffsetTimeOriginal, which recent phones write and older cameras do not.
    pub offset: Option<FixedOffset>,
}

impl CaptureTime {
    /// Uses the recorded offset when there is one; otherwise assumes the photo was
    /// taken in `default_tz` (the city the report is filed in). During a DST
    /// fall-back the earlier of the two instants is chosen; a local time that falls
    /// in a spring-forward gap never happened, so it yields `None`.
    pub fn to_utc(&self, default_tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        match self.offset {
            Some(offset) => offset
                .from_local_datetime(&self.local)
                .earliest()
                .map(|t| t.to_utc()),
            None => default_tz
                .from_local_datetime(&self.local)
                .earliest()
                .map(|t| t.to_utc()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EncodedJpeg {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone)]
pub struct ProcessedPhoto {
    pub format: SourceFormat,
    /// As displayed, i.e. after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub taken_at: Option<CaptureTime>,
    pub gps: Option<GpsPoint>,
    /// Hex SHA-256 of the uploaded bytes, for exact-duplicate detection.
    pub sha256: String,
    /// 64-bit DCT perceptual hash; compare with [`hamming_distance`].
    pub phash: u64,
    /// Long edge at most 1280 px, never upscaled, no metadata.
    pub display: EncodedJpeg,
    /// Long edge at most 320 px, never upscaled, no metadata.
    pub thumbnail: EncodedJpeg,
}

/// Every message is shown to the citizen as is.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PhotoError {
    #[error("the uploaded photo is empty")]
    Empty,
    #[error(
        "the photo is too large ({} MB); the maximum is {} MB",
        megabytes(*.size),
        megabytes(*.limit)
    )]
    TooLarge { size: usize, limit: usize },
    #[error("{}; accepted types: JPEG, PNG, WebP", unsupported_subject(*.detected))]
    UnsupportedType { detected: Option<&'static str> },
    #[error(
        "the photo is {width}×{height} pixels, more than the maximum of {} megapixels",
        *.limit / 1_000_000
    )]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    #[error("the photo could not be read: {0}")]
    Corrupt(String),
}

fn megabytes(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn unsupported_subject(detected: Option<&str>) -> String {
    match detected {
        Some(name) => format!("{name} is not accepted"),
        None => "this file type is not accepted".to_owned(),
    }
}

pub use crate::domain::evidence::hamming_distance;

pub fn process_photo(bytes: &[u8], limits: &PhotoLimits) -> Result<ProcessedPhoto, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(PhotoError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let format = sniff::detect(bytes)?;

    let (jpeg_exif, (width, height)) = match format {
        SourceFormat::Jpeg => {
            let header = jpeg_header::parse(bytes).ok_or_else(not_decodable)?;
            if header.scans > MAX_JPEG_SCANS {
                return Err(PhotoError::Corrupt(format!(
                    "the JPEG has {} scans, more than the {MAX_JPEG_SCANS} accepted",
                    header.scans
                )));
            }
            (header.exif, (header.width, header.height))
        }
        SourceFormat::Png => (
            None,
            sniff::png_dimensions(bytes).ok_or_else(not_decodable)?,
        ),
        SourceFormat::Webp => (
            None,
            sniff::webp_dimensions(bytes).ok_or_else(not_decodable)?,
        ),
    };
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PhotoError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }

    let meta = metadata::read(bytes, format, jpeg_exif);
    let copies = match format {
        SourceFormat::Jpeg => match codec::decode_jpeg(bytes, DISPLAY_EDGE, limits.max_pixels)? {
            Decoded::Rgb(image) => render(image, meta.orientation)?,
            #[cfg(feature = "turbojpeg")]
            Decoded::Ycc(image) => render(image, meta.orientation)?,
        },
        SourceFormat::Png => render(decode_png(bytes, limits)?, meta.orientation)?,
        SourceFormat::Webp => render(decode_with_image(bytes, format, limits)?, meta.orientation)?,
    };

    let (width, height) = if meta.orientation >= 5 {
        (height, width)
    } else {
        (width, height)
    };
    Ok(ProcessedPhoto {
        format,
        width,
        height,
        taken_at: meta.taken_at,
        gps: meta.gps,
        sha256: hex::encode(Sha256::digest(bytes)),
        phash: copies.phash,
        display: copies.display,
        thumbnail: copies.thumbnail,
    })
}

/// What is made from the pixels, whichever layout they were decoded to.
struct Copies {
    display: EncodedJpeg,
    thumbnail: EncodedJpeg,
    phash: u64,
}

fn render(decoded: impl Raster, orientation: u8) -> Result<Copies, PhotoError> {
    // Resizing before rotating means the rotation touches 1.2 MP instead of the
    // decoded 1.7–3 MP; the long edge, and so the scale, is the same either way.
    let display = match decoded.fit_within(DISPLAY_EDGE, DISPLAY_FILTER)? {
        Some(resized) => {
            decoded.recycle();
            resized
        }
        None => decoded,
    }
    .oriented(orientation);
    // The display copy is already a good-quality downscale, and ~1/3 the pixels
    // of the decode, so the thumbnail is derived from it.
    let thumbnail = display.fit_within(THUMBNAIL_EDGE, THUMBNAIL_FILTER)?;
    let thumbnail = thumbnail.as_ref().unwrap_or(&display);

    let copies = Copies {
        phash: perceptual_hash(thumbnail),
        display: encode(&display, DISPLAY_QUALITY)?,
        thumbnail: encode(thumbnail, THUMBNAIL_QUALITY)?,
    };
    display.recycle();
    Ok(copies)
}

fn encode(image: &impl Raster, quality: u8) -> Result<EncodedJpeg, PhotoError> {
    Ok(EncodedJpeg {
        bytes: image.encode(quality)?,
        width: image.width(),
        height: image.height(),
    })
}

fn not_decodable() -> PhotoError {
    PhotoError::Corrupt("the image header is damaged".into())
}

fn image_error(error: image::ImageError) -> PhotoError {
    tracing::debug!(%error, "image decode failed");
    match error {
        image::ImageError::Unsupported(_) => PhotoError::UnsupportedType { detected: None },
        _ => PhotoError::Corrupt("the image data is damaged or incomplete".into()),
    }
}

fn image_reader(bytes: &[u8], format: SourceFormat) -> ImageReader<Cursor<&[u8]>> {
    let format = match format {
        SourceFormat::Jpeg => ImageFormat::Jpeg,
        SourceFormat::Png => ImageFormat::Png,
        SourceFormat::Webp => ImageFormat::WebP,
    };
    ImageReader::with_format(Cursor::new(bytes), format)
}

/// PNGs are decoded with 16-bit channels cut to 8 bits as they are read: `image`
/// keeps them at 16 bits, so a 50 MP RGBA PNG of a few hundred kilobytes took
/// 400 MB to decode and 590 MB at peak, against 200 MB per photo worker, for
/// copies that are 8-bit JPEGs anyway.
fn decode_png(bytes: &[u8], limits: &PhotoLimits) -> Result<RgbImage, PhotoError> {
    // 4 bytes a pixel is the 8-bit RGBA frame; the bound also covers ancillary
    // chunks, which the header check does not.
    let max_bytes = usize::try_from(limits.max_pixels.saturating_mul(4)).unwrap_or(usize::MAX);
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: max_bytes });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    let mut buffer = vec![0; reader.output_buffer_size().ok_or_else(not_decodable)?];
    let frame = reader.next_frame(&mut buffer).map_err(png_error)?;
    buffer.truncate(frame.buffer_size());
    let (width, height) = (frame.width, frame.height);
    // The transformations expand palettes to RGB or RGBA.
    if frame.color_type == png::ColorType::Indexed {
        return Err(png_error("palette left after expansion"));
    }
    RgbImage::from_samples(width, height, buffer, frame.color_type.samples())
        .ok_or_else(|| png_error("unexpected samples a pixel"))
}

fn png_error(error: impl std::fmt::Display) -> PhotoError {
    tracing::debug!(%error, "PNG decode failed");
    PhotoError::Corrupt("the image data is damaged or incomplete".into())
}

/// WebP uploads are screenshots and the odd edited photo, not the hot path, so
/// `image` decodes them; only its decoders are used, never its resize or encoder.
fn decode_with_image(
    bytes: &[u8],
    format: SourceFormat,
    limits: &PhotoLimits,
) -> Result<RgbImage, PhotoError> {
    let mut reader = image_reader(bytes, format);
    // Redundant with the header check above, but it also bounds allocations the
    // header does not declare, such as ancillary chunks and animation frames.
    let mut decoder_limits = Limits::default();
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let image = reader.decode().map_err(image_error)?;
    let (width, height) = (image.width(), image.height());
    let (pixels, samples) = match image {
        DynamicImage::ImageRgb8(rgb) => (rgb.into_raw(), 3),
        DynamicImage::ImageRgba8(rgba) => (rgba.into_raw(), 4),
        other if other.color().has_alpha() => (other.into_rgba8().into_raw(), 4),
        other => (other.into_rgb8().into_raw(), 3),
    };
    RgbImage::from_samples(width, height, pixels, samples).ok_or_else(not_decodable)
}

/// pHash: median-thresholded low DCT frequencies. It survives re-compression and
/// rescaling better than the gradient hashes, and the median (unlike the mean,
/// which the DC term drags up) splits the bits evenly, so unrelated photos land
/// around 32 bits apart. Computed on the thumbnail: the hash only looks at a
/// 16×16 reduction anyway. That reduction (Lanczos3, as image_hasher would do it)
/// is made here with fast_image_resize, so the hasher's own resize with `image`
/// is a plain copy and only its 16×16 DCT and median remain.
fn perceptual_hash(image: &impl Raster) -> u64 {
    const SIDE: u32 = 16;
    static HASHER: LazyLock<Hasher<[u8; 8]>> = LazyLock::new(|| {
        HasherConfig::with_bytes_type::<[u8; 8]>()
            .hash_size(SIDE / 2, SIDE / 2)
            .hash_alg(HashAlg::Median)
            .preproc_dct()
            .to_hasher()
    });
    let (width, height) = (image.width(), image.height());
    let luma = image.luma();
    // Resizing a non-empty 8-bit plane cannot fail; if it ever did, the hasher's
    // own (slower) resize of the full plane gives the same hash.
    let gray = raster::resize_gray(width, height, &luma, SIDE, SIDE)
        .and_then(|small| image::GrayImage::from_raw(SIDE, SIDE, small))
        .or_else(|| image::GrayImage::from_raw(width, height, luma.into_owned()))
        .unwrap_or_default();
    u64::from_be_bytes(HASHER.hash_image(&gray).into_inner())
}

/// The pipeline's costly steps one by one, exposed so the benchmark can tell which
/// of them a regression is in. Each calls exactly what [`process_photo`] calls.
/// Not part of the service's API.
#[doc(hidden)]
pub mod stages {
    use super::{DISPLAY_EDGE, DISPLAY_FILTER, DISPLAY_QUALITY, PhotoError};
    use super::{Raster, RgbImage, codec};
    use super::{THUMBNAIL_EDGE, THUMBNAIL_FILTER, THUMBNAIL_QUALITY};

    /// A decoded photo, in whichever layout the JPEG backend chose.
    pub struct Decoded(codec::Decoded);

    /// The display copy and the thumbnail, still unencoded.
    pub struct Copies(CopiesIn);

    enum CopiesIn {
        Rgb(RgbImage, RgbImage),
        #[cfg(feature = "turbojpeg")]
        Ycc(super::planar::YccImage, super::planar::YccImage),
    }

    /// DCT-scaled decode of a JPEG, as for the display copy.
    pub fn decode_jpeg(bytes: &[u8]) -> Result<Decoded, PhotoError> {
        codec::decode_jpeg(bytes, DISPLAY_EDGE, u64::MAX).map(Decoded)
    }

    /// Display and thumbnail resizes.
    pub fn resize(decoded: &Decoded) -> Result<Copies, PhotoError> {
        Ok(Copies(match &decoded.0 {
            codec::Decoded::Rgb(image) => {
                let (display, thumbnail) = resize_both(image)?;
                CopiesIn::Rgb(display, thumbnail)
            }
            #[cfg(feature = "turbojpeg")]
            codec::Decoded::Ycc(image) => {
                let (display, thumbnail) = resize_both(image)?;
                CopiesIn::Ycc(display, thumbnail)
            }
        }))
    }

    /// Encodes both copies; returns their total size in bytes.
    pub fn encode(copies: &Copies) -> Result<usize, PhotoError> {
        match &copies.0 {
            CopiesIn::Rgb(display, thumbnail) => encode_both(display, thumbnail),
            #[cfg(feature = "turbojpeg")]
            CopiesIn::Ycc(display, thumbnail) => encode_both(display, thumbnail),
        }
    }

    fn resize_both<R: Raster>(decoded: &R) -> Result<(R, R), PhotoError> {
        let display = decoded
            .fit_within(DISPLAY_EDGE, DISPLAY_FILTER)?
            .ok_or_else(not_reduced)?;
        let thumbnail = display
            .fit_within(THUMBNAIL_EDGE, THUMBNAIL_FILTER)?
            .ok_or_else(not_reduced)?;
        Ok((display, thumbnail))
    }

    fn encode_both(display: &impl Raster, thumbnail: &impl Raster) -> Result<usize, PhotoError> {
        let display = display.encode(DISPLAY_QUALITY)?;
        let thumbnail = thumbnail.encode(THUMBNAIL_QUALITY)?;
        Ok(display.len() + thumbnail.len())
    }

    fn not_reduced() -> PhotoError {
        PhotoError::Corrupt("benchmark input is too small to be resized".into())
    }
}
