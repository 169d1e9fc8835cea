//! libjpeg-turbo backend (`turbojpeg` feature): SIMD decode with DCT scaling, and
//! its encoder.

use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use super::{damaged, encode_failed, lossless_unsupported};
use crate::media::PhotoError;
use crate::media::raster::{self, RgbImage};

/// Same scale choice as the pure-Rust backend (1, 1/2, 1/4, 1/8) so both produce
/// the same output sizes. libjpeg-turbo also offers n/8 scales, but only the
/// power-of-two ones have SIMD inverse DCTs, so the odd ones are not faster.
/// `_max_pixels` is unused: this crate exposes no decoder allocation cap, and the
/// output buffer is sized here from the header the caller has already checked.
pub(crate) fn decode_jpeg(
    bytes: &[u8],
    min_long_edge: u32,
    _max_pixels: u64,
) -> Result<RgbImage, PhotoError> {
    let mut decompressor = Decompressor::new().map_err(damaged)?;
    let header = decompressor.read_header(bytes).map_err(damaged)?;
    if header.is_lossless {
        return Err(lossless_unsupported());
    }
    let long_edge = header.width.max(header.height);
    let min_long_edge = min_long_edge as usize;
    let factor = [
        ScalingFactor::ONE_EIGHTH,
        ScalingFactor::ONE_QUARTER,
        ScalingFactor::ONE_HALF,
    ]
    .into_iter()
    .find(|factor| factor.scale(long_edge) >= min_long_edge)
    .unwrap_or(ScalingFactor::ONE);
    decompressor.set_scaling_factor(factor).map_err(damaged)?;
    let scaled = header.scaled(factor);
    // libjpeg-turbo will not convert CMYK to RGB itself.
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let pitch = scaled.width * format.size();
    let mut pixels = raster::take_buffer(pitch * scaled.height);
    let output = Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    // A truncated file is reported by libjpeg as a warning, which TurboJPEG turns
    // into an error here; that is what keeps half-grey images out.
    decompressor.decompress(bytes, output).map_err(damaged)?;
    let width = u32::try_from(scaled.width).map_err(damaged)?;
    let height = u32::try_from(scaled.height).map_err(damaged)?;
    Ok(if cmyk {
        let rgb = RgbImage::from_cmyk(width, height, &pixels, true);
        raster::recycle(pixels);
        rgb
    } else {
        RgbImage {
            width,
            height,
            pixels,
        }
    })
}

/// Baseline 4:2:0; TurboJPEG writes only a JFIF header, and nothing from the
/// source file is passed to it.
pub(crate) fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let mut compressor = Compressor::new().map_err(encode_failed)?;
    compressor
        .set_quality(i32::from(quality))
        .map_err(encode_failed)?;
    compressor
        .set_subsamp(Subsamp::Sub2x2)
        .map_err(encode_failed)?;
    let width = image.width as usize;
    compressor
        .compress_to_vec(Image {
            pixels: image.pixels.as_slice(),
            width,
            pitch: width * 3,
            height: image.height as usize,
            format: PixelFormat::RGB,
        })
        .map_err(encode_failed)
}
