//! libjpeg-turbo backend (`turbojpeg` feature): SIMD decode with DCT scaling, and
//! its encoder. YCbCr photos, i.e. nearly all of them, stay in YCbCr planes from
//! decode to encode (see `media::planar`); the rest are decoded to RGB.

use turbojpeg::{
    Colorspace, Compressor, DecompressHeader, Decompressor, Image, PixelFormat, ScalingFactor,
    Subsamp, YuvImage, YuvPlanesImage,
};

use super::{Decoded, damaged, encode_failed, lossless_unsupported};
use crate::media::PhotoError;
use crate::media::planar::{Subsampling, YccImage};
use crate::media::raster::{self, RgbImage};

/// Decodes at the smallest n/8 DCT scale whose long edge is still at least
/// `min_long_edge`: a 12 MP photo comes out at 3/8, 1500×1125, where the pure-Rust
/// backend (power-of-two scales only) stops at 1/2. libjpeg-turbo's 3×3 inverse
/// DCT is scalar where its 4×4 one is SIMD, yet it costs less in time, and the
/// resizer then starts from 44 % fewer pixels (BENCHMARKS.md, photo pipeline).
/// `_max_pixels` is unused: this crate exposes no decoder allocation cap, and the
/// output buffer is sized here from the header the caller has already checked.
pub(crate) fn decode_jpeg(
    bytes: &[u8],
    min_long_edge: u32,
    _max_pixels: u64,
) -> Result<Decoded, PhotoError> {
    let mut decompressor = Decompressor::new().map_err(damaged)?;
    let header = decompressor.read_header(bytes).map_err(damaged)?;
    if header.is_lossless {
        return Err(lossless_unsupported());
    }
    let long_edge = header.width.max(header.height);
    let min_long_edge = min_long_edge as usize;
    let factor = (1..8)
        .map(|eighths| ScalingFactor::new(eighths, 8))
        .find(|factor| factor.scale(long_edge) >= min_long_edge)
        .unwrap_or(ScalingFactor::ONE);
    decompressor.set_scaling_factor(factor).map_err(damaged)?;
    let scaled = header.scaled(factor);
    let width = u32::try_from(scaled.width).map_err(damaged)?;
    let height = u32::try_from(scaled.height).map_err(damaged)?;
    // A truncated file is reported by libjpeg as a warning, which TurboJPEG turns
    // into an error in both calls below; that is what keeps half-grey images out.
    match planar_subsampling(&header) {
        Some(subsampling) => {
            decode_planes(&mut decompressor, bytes, width, height, subsampling).map(Decoded::Ycc)
        }
        None => decode_rgb(&mut decompressor, bytes, &scaled).map(Decoded::Rgb),
    }
}

/// The subsampling to decode to planes with, or `None` for JPEGs that go through
/// RGB: CMYK, grayscale, RGB-coded and the rare 4:1:1 / 4:4:1 files.
fn planar_subsampling(header: &DecompressHeader) -> Option<Subsampling> {
    if header.colorspace != Colorspace::YCbCr {
        return None;
    }
    let (across, down) = match header.subsamp {
        Subsamp::Sub2x2 => (2, 2),
        Subsamp::Sub2x1 => (2, 1),
        Subsamp::Sub1x2 => (1, 2),
        Subsamp::None => (1, 1),
        _ => return None,
    };
    Some(Subsampling { across, down })
}

fn subsamp(subsampling: Subsampling) -> Result<Subsamp, PhotoError> {
    match (subsampling.across, subsampling.down) {
        (2, 2) => Ok(Subsamp::Sub2x2),
        (2, 1) => Ok(Subsamp::Sub2x1),
        (1, 2) => Ok(Subsamp::Sub1x2),
        (1, 1) => Ok(Subsamp::None),
        other => Err(encode_failed(format!(
            "no TurboJPEG subsampling for {other:?}"
        ))),
    }
}

/// A 4:2:0 photo's chroma planes come out of the scaled IDCT at a quarter of the
/// luma size, where the RGB path would run a larger IDCT on them (to save
/// upsampling) and then convert every pixel to RGB.
fn decode_planes(
    decompressor: &mut Decompressor,
    bytes: &[u8],
    width: u32,
    height: u32,
    subsampling: Subsampling,
) -> Result<YccImage, PhotoError> {
    let mut image = YccImage::new(width, height, subsampling);
    let output = YuvImage {
        pixels: image.pixels.as_mut_slice(),
        width: width as usize,
        align: 1,
        height: height as usize,
        subsamp: subsamp(subsampling)?,
    };
    // The crate asserts the buffer is big enough; check it here so a layout
    // disagreement could only ever be an error, never a panic.
    let needed = turbojpeg::yuv_pixels_len(output.width, 1, output.height, output.subsamp)
        .map_err(damaged)?;
    if needed != output.pixels.len() {
        return Err(damaged(format!(
            "planar layout is {} bytes, TurboJPEG expects {needed}",
            output.pixels.len()
        )));
    }
    decompressor
        .decompress_to_yuv(bytes, output)
        .map_err(damaged)?;
    Ok(image)
}

fn decode_rgb(
    decompressor: &mut Decompressor,
    bytes: &[u8],
    scaled: &DecompressHeader,
) -> Result<RgbImage, PhotoError> {
    // libjpeg-turbo will not convert CMYK to RGB itself.
    let cmyk = matches!(scaled.colorspace, Colorspace::CMYK | Colorspace::YCCK);
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

fn compressor(quality: u8) -> Result<Compressor, PhotoError> {
    let mut compressor = Compressor::new().map_err(encode_failed)?;
    compressor
        .set_quality(i32::from(quality))
        .map_err(encode_failed)?;
    Ok(compressor)
}

/// Baseline 4:2:0; TurboJPEG writes only a JFIF header, and nothing from the
/// source file is passed to it.
pub(crate) fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let mut compressor = compressor(quality)?;
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

/// Straight from the planes, in their own subsampling (4:2:0 for every resized
/// copy); as above, only a JFIF header is written.
pub(crate) fn encode_ycc(image: &YccImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let [y_plane, u_plane, v_plane] = image.planes();
    let (luma_stride, chroma_stride) = (image.luma_size().0, image.chroma_size().0);
    compressor(quality)?
        .compress_yuv_planes_to_vec(&YuvPlanesImage {
            y_plane,
            u_plane,
            v_plane,
            width: image.width as usize,
            height: image.height as usize,
            y_stride: luma_stride as usize,
            u_stride: chroma_stride as usize,
            v_stride: chroma_stride as usize,
            subsamp: subsamp(image.subsampling)?,
        })
        .map_err(encode_failed)
}
