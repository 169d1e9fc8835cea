//! JPEG decode and encode, the two steps that dominate the pipeline's cost.
//!
//! Exactly one backend is compiled in: pure Rust by default, so a plain `cargo
//! build` needs nothing beyond the toolchain, or libjpeg-turbo with the
//! `turbojpeg` feature for deployments that want the extra speed. Both expose the
//! same two functions, so everything else in the pipeline is shared; libjpeg-turbo
//! can also decode to and encode from YCbCr planes, which only its backend uses.

#[cfg(not(feature = "turbojpeg"))]
mod rust;
#[cfg(feature = "turbojpeg")]
mod turbo;

#[cfg(not(feature = "turbojpeg"))]
pub(crate) use rust::{decode_jpeg, encode_jpeg};
#[cfg(feature = "turbojpeg")]
pub(crate) use turbo::{decode_jpeg, encode_jpeg, encode_ycc};

use super::PhotoError;
#[cfg(feature = "turbojpeg")]
use super::planar::YccImage;
use super::raster::RgbImage;

/// A decoded JPEG in the layout the backend chose for it.
pub(crate) enum Decoded {
    Rgb(RgbImage),
    #[cfg(feature = "turbojpeg")]
    Ycc(YccImage),
}

fn damaged(error: impl std::fmt::Display) -> PhotoError {
    tracing::debug!(%error, "JPEG decode failed");
    PhotoError::Corrupt("the JPEG data is damaged or incomplete".into())
}

/// Encoding a well-formed in-memory image into a Vec cannot fail in practice; if
/// it ever does, it is our bug, so it is logged loudly and reported generically.
fn encode_failed(error: impl std::fmt::Display) -> PhotoError {
    tracing::error!(%error, "JPEG encode of a decoded photo failed");
    PhotoError::Corrupt("the photo could not be processed".into())
}

fn lossless_unsupported() -> PhotoError {
    PhotoError::UnsupportedType {
        detected: Some("lossless JPEG"),
    }
}
