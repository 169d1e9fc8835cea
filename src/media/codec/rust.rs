//! Pure-Rust backend: jpeg-decoder (with DCT-domain downscaling) and jpeg-encoder.

use jpeg_decoder::{Decoder, PixelFormat};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::{Decoded, damaged, encode_failed, lossless_unsupported};
use crate::media::PhotoError;
use crate::media::raster::RgbImage;

/// Decodes at the smallest of the 1, 1/2, 1/4, 1/8 DCT scales whose long edge is
/// still at least `min_long_edge` (or at full size if the photo is smaller).
/// Skipping most of the IDCT and colour conversion is the largest single saving in
/// the pipeline: a 12 MP photo is decoded straight to 2000×1500.
pub(crate) fn decode_jpeg(
    bytes: &[u8],
    min_long_edge: u32,
    max_pixels: u64,
) -> Result<Decoded, PhotoError> {
    let mut decoder = Decoder::new(bytes);
    // The caller has already checked the declared size; this cap stops the
    // decoder itself if the header walk and the decoder ever disagree.
    decoder.set_max_decoding_buffer_size(
        usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX),
    );
    let target = u16::try_from(min_long_edge).unwrap_or(u16::MAX);
    let (width, height) = decoder.scale(target, target).map_err(damaged)?;
    let pixels = decoder.decode().map_err(damaged)?;
    let format = decoder
        .info()
        .ok_or_else(|| damaged("no frame information after decode"))?
        .pixel_format;
    let (width, height) = (u32::from(width), u32::from(height));
    if pixels.len() != width as usize * height as usize * format.pixel_bytes() {
        return Err(damaged("decoded buffer does not match the frame size"));
    }
    Ok(Decoded::Rgb(match format {
        PixelFormat::RGB24 => RgbImage {
            width,
            height,
            pixels,
        },
        PixelFormat::L8 => RgbImage {
            width,
            height,
            pixels: pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        },
        PixelFormat::CMYK32 => RgbImage::from_cmyk(width, height, &pixels, false),
        PixelFormat::L16 => return Err(lossless_unsupported()),
    }))
}

/// Baseline 4:2:0 with no metadata segments: jpeg-encoder writes only JFIF, and
/// nothing from the source file is passed to it.
pub(crate) fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let width = u16::try_from(image.width).map_err(encode_failed)?;
    let height = u16::try_from(image.height).map_err(encode_failed)?;
    let mut out = Vec::with_capacity(image.pixels.len() / 8);
    let mut encoder = Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder
        .encode(&image.pixels, width, height, ColorType::Rgb)
        .map_err(encode_failed)?;
    Ok(out)
}
