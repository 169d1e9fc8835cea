//! Pixel operations shared by every source format and both JPEG backends.

use std::borrow::Cow;
use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{
    FilterType, IntoImageView, IntoImageViewMut, PixelType, ResizeAlg, ResizeOptions, Resizer,
};

use super::{PhotoError, codec};

/// Multi-megabyte pixel buffers kept per thread between photos. Handing the kernel
/// fresh pages costs a fault per 4 KiB: for a 12 MP photo that was ~7 ms of a
/// ~50 ms pipeline, more than the resize itself, because glibc returns freed blocks
/// this large to the kernel. Photos are processed on a few long-lived threads
/// ([`super::PhotoWorkers`]); each keeps at most [`MAX_SPARE`] spare buffers of
/// [`MAX_RETAINED`] bytes in all, and one resizer scratch area capped at the same
/// size; anything larger (only uploads near the pixel limit) is freed. Four covers
/// the decode, the display copy and the two intermediates of a planar resize.
#[derive(Default)]
struct Scratch {
    spare: Vec<Vec<u8>>,
    resizer: Resizer,
}

const MAX_RETAINED: usize = 24 << 20;
const MAX_SPARE: usize = 4;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A zeroed buffer of `len` bytes, reusing a spare one (and its mapped pages) when
/// this thread has one.
pub(super) fn take_buffer(len: usize) -> Vec<u8> {
    let spare = SCRATCH.with_borrow_mut(|scratch| {
        let spare = &mut scratch.spare;
        // The smallest that fits, else the largest (it grows the least).
        let pick = spare
            .iter()
            .enumerate()
            .filter(|(_, buf)| buf.capacity() >= len)
            .min_by_key(|(_, buf)| buf.capacity())
            .or_else(|| {
                spare
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, buf)| buf.capacity())
            })
            .map(|(at, _)| at);
        pick.map(|at| spare.swap_remove(at))
    });
    let mut buf = spare.unwrap_or_default();
    buf.clear();
    buf.resize(len, 0);
    buf
}

/// Returns a buffer for [`take_buffer`] to hand out again.
pub(super) fn recycle(buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_RETAINED {
        return;
    }
    SCRATCH.with_borrow_mut(|scratch| {
        let spare = &mut scratch.spare;
        spare.push(buf);
        // Keep the largest that fit the budget: they cost the most to fault in.
        spare.sort_unstable_by_key(|b| std::cmp::Reverse(b.capacity()));
        let mut retained = 0;
        let mut kept = 0;
        spare.retain(|b| {
            let keep = kept < MAX_SPARE && retained + b.capacity() <= MAX_RETAINED;
            if keep {
                retained += b.capacity();
                kept += 1;
            }
            keep
        });
    });
}

fn with_resizer<T>(f: impl FnOnce(&mut Resizer) -> T) -> T {
    SCRATCH.with_borrow_mut(|scratch| {
        let result = f(&mut scratch.resizer);
        if scratch.resizer.size_of_internal_buffers() > MAX_RETAINED {
            scratch.resizer.reset_internal_buffers();
        }
        result
    })
}

/// What the pipeline does with a decoded photo, whatever its pixel layout: packed RGB
/// for every source, or (turbojpeg build) the JPEG's own YCbCr planes, which spare
/// the decoder and encoder their colour conversions and the resizer half its bytes.
pub(super) trait Raster: Sized {
    fn width(&self) -> u32;
    fn height(&self) -> u32;

    /// Scales so the long edge is at most `max_edge`, never enlarging: an upscaled
    /// copy costs bandwidth and storage while adding no detail. `None` means the
    /// image already fits.
    fn fit_within(&self, max_edge: u32, filter: FilterType) -> Result<Option<Self>, PhotoError>;

    /// Applies an EXIF orientation (1–8), returning the image as it should be displayed.
    fn oriented(self, orientation: u8) -> Self;

    /// BT.601 luma, `width × height` tightly packed, the weighting the perceptual
    /// hash was designed around.
    fn luma(&self) -> Cow<'_, [u8]>;

    /// Baseline JPEG with no metadata segments: nothing from the source file is
    /// ever passed to an encoder.
    fn encode(&self, quality: u8) -> Result<Vec<u8>, PhotoError>;

    /// Hands the pixel buffer back for [`take_buffer`] to reuse.
    fn recycle(self);
}

/// Tightly packed 8-bit RGB, the layout every decoder can produce.
pub(super) struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// `inverted` is the Adobe convention (0 = full ink) that libjpeg passes through;
    /// jpeg-decoder un-inverts before returning, so each backend says which it has.
    /// CMYK JPEGs come from print workflows and carry no ICC-free "right" answer, so
    /// the naive conversion is used: good enough to see what the photo shows.
    pub fn from_cmyk(width: u32, height: u32, cmyk: &[u8], inverted: bool) -> Self {
        let pixels = cmyk
            .chunks_exact(4)
            .flat_map(|px| {
                let [c, m, y, k] = [px[0], px[1], px[2], px[3]].map(|v| {
                    if inverted {
                        u16::from(v)
                    } else {
                        255 - u16::from(v)
                    }
                });
                [c, m, y].map(|v| ((v * k + 127) / 255) as u8)
            })
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    /// 8-bit grey, grey and alpha, RGB or RGBA (`samples` 1 to 4 a pixel) as RGB,
    /// rewritten in the buffer that holds them, so that a 50 MP frame is never
    /// held twice. Alpha is blended onto white: citizens' screenshots with
    /// transparency would otherwise turn black in a JPEG, hiding whatever was
    /// drawn in dark ink. `None` for any other number of samples.
    pub fn from_samples(
        width: u32,
        height: u32,
        mut pixels: Vec<u8>,
        samples: usize,
    ) -> Option<Self> {
        let to_rgb: fn(&[u8]) -> [u8; 3] = match samples {
            1 => |px| [px[0]; 3],
            2 => |px| [on_white(px[0], px[1]); 3],
            3 => |px| [px[0], px[1], px[2]],
            4 => |px| [px[0], px[1], px[2]].map(|v| on_white(v, px[3])),
            _ => return None,
        };
        let count = pixels.len() / samples;
        let convert = |pixels: &mut Vec<u8>, i: usize| {
            let rgb = to_rgb(&pixels[i * samples..(i + 1) * samples]);
            pixels[i * 3..i * 3 + 3].copy_from_slice(&rgb);
        };
        // Each pixel is read before anything is written over it: front to back
        // when pixels shrink, back to front when they grow.
        if samples == 3 {
            // Already RGB.
        } else if samples > 3 {
            (0..count).for_each(|i| convert(&mut pixels, i));
            pixels.truncate(count * 3);
            pixels.shrink_to_fit();
        } else {
            pixels.resize(count * 3, 0);
            (0..count).rev().for_each(|i| convert(&mut pixels, i));
        }
        Some(Self {
            width,
            height,
            pixels,
        })
    }
}

fn on_white(value: u8, alpha: u8) -> u8 {
    let alpha = u16::from(alpha);
    ((u16::from(value) * alpha + 255 * (255 - alpha) + 127) / 255) as u8
}

impl Raster for RgbImage {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn fit_within(&self, max_edge: u32, filter: FilterType) -> Result<Option<Self>, PhotoError> {
        let Some((width, height)) = fitted_size(self.width, self.height, max_edge) else {
            return Ok(None);
        };
        let src = ImageRef::new(self.width, self.height, &self.pixels, PixelType::U8x3)
            .map_err(resize_failed)?;
        let buffer = take_buffer(width as usize * height as usize * 3);
        let mut dst =
            Image::from_vec_u8(width, height, buffer, PixelType::U8x3).map_err(resize_failed)?;
        let whole = (f64::from(self.width), f64::from(self.height));
        resize(&src, whole, &mut dst, filter)?;
        Ok(Some(Self {
            width,
            height,
            pixels: dst.into_vec(),
        }))
    }

    fn oriented(self, orientation: u8) -> Self {
        let Some(transform) = Orientation::from_exif(orientation) else {
            return self;
        };
        let (width, height) = transform.displayed_size(self.width, self.height);
        let mut pixels = take_buffer(self.pixels.len());
        let stored = (self.width as usize, self.height as usize);
        transform.apply::<3>(
            &self.pixels,
            stored,
            stored.0 * 3,
            &mut pixels,
            width as usize * 3,
        );
        recycle(self.pixels);
        Self {
            width,
            height,
            pixels,
        }
    }

    fn luma(&self) -> Cow<'_, [u8]> {
        self.pixels
            .chunks_exact(3)
            .map(|px| {
                let [r, g, b] = [px[0], px[1], px[2]].map(u32::from);
                ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
            })
            .collect()
    }

    fn encode(&self, quality: u8) -> Result<Vec<u8>, PhotoError> {
        codec::encode_jpeg(self, quality)
    }

    fn recycle(self) {
        recycle(self.pixels);
    }
}

/// The size that brings the long edge down to `max_edge`, keeping the aspect ratio;
/// `None` when the image already fits, since it is never enlarged.
pub(super) fn fitted_size(width: u32, height: u32, max_edge: u32) -> Option<(u32, u32)> {
    let long = width.max(height);
    if long <= max_edge {
        return None;
    }
    // Fits in u32: edge <= long, so the result is at most max_edge.
    let scale = |edge: u32| {
        let scaled =
            (u64::from(edge) * u64::from(max_edge) + u64::from(long) / 2) / u64::from(long);
        (scaled as u32).max(1)
    };
    Some((scale(width), scale(height)))
}

/// Resizes the top-left `extent` of `src` (in samples; fractional for the chroma
/// planes of odd-sized images) onto the whole of `dst`. Any rows and columns of
/// `src` beyond the extent are padding and never sampled.
pub(super) fn resize(
    src: &impl IntoImageView,
    (width, height): (f64, f64),
    dst: &mut impl IntoImageViewMut,
    filter: FilterType,
) -> Result<(), PhotoError> {
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .crop(0.0, 0.0, width, height)
        // Four-channel images here are packed planes, not RGBA: premultiplying
        // by the fourth channel would darken the other three.
        .use_alpha(false);
    with_resizer(|resizer| resizer.resize(src, dst, &options)).map_err(resize_failed)
}

/// Resizing valid in-memory pixels cannot fail in practice; if it ever does, it is
/// our bug, so it is logged loudly and reported generically.
pub(super) fn resize_failed(error: impl std::fmt::Display) -> PhotoError {
    tracing::error!(%error, "resize of a decoded photo failed");
    PhotoError::Corrupt("the photo could not be processed".into())
}

/// An EXIF orientation other than 1: how the stored pixels map to displayed ones.
#[derive(Clone, Copy)]
pub(super) struct Orientation {
    /// For each displayed pixel (x, y), where to read it in the stored image of
    /// size (w, h).
    source: fn(usize, usize, usize, usize) -> (usize, usize),
    /// Orientations 5–8 turn the image a quarter, swapping width and height.
    transposes: bool,
}

impl Orientation {
    /// `None` for 1 (already upright) and for invalid values, which are ignored.
    pub fn from_exif(orientation: u8) -> Option<Self> {
        let source: fn(usize, usize, usize, usize) -> (usize, usize) = match orientation {
            2 => |x, y, w, _| (w - 1 - x, y),         // mirrored
            3 => |x, y, w, h| (w - 1 - x, h - 1 - y), // rotated 180°
            4 => |x, y, _, h| (x, h - 1 - y),         // flipped
            5 => |x, y, _, _| (y, x),                 // transposed
            6 => |x, y, _, h| (y, h - 1 - x),         // rotate 90° clockwise to display
            7 => |x, y, w, h| (w - 1 - y, h - 1 - x), // transversed
            8 => |x, y, w, _| (w - 1 - y, x),         // rotate 90° anticlockwise to display
            _ => return None,
        };
        Some(Self {
            source,
            transposes: orientation >= 5,
        })
    }

    pub fn displayed_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.transposes {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Writes the displayed form of a stored image of `size` pixels of `N` bytes,
    /// whose rows start `stride` bytes apart, into `dst`, whose rows start
    /// `dst_stride` bytes apart. Padding in either is neither read nor written.
    pub fn apply<const N: usize>(
        self,
        src: &[u8],
        (w, h): (usize, usize),
        stride: usize,
        dst: &mut [u8],
        dst_stride: usize,
    ) {
        let (out_w, out_h) = if self.transposes { (h, w) } else { (w, h) };
        for (y, row) in dst.chunks_mut(dst_stride).take(out_h).enumerate() {
            for (x, out) in row[..out_w * N].chunks_exact_mut(N).enumerate() {
                let (sx, sy) = (self.source)(x, y, w, h);
                let at = sy * stride + sx * N;
                out.copy_from_slice(&src[at..at + N]);
            }
        }
    }
}

/// Lanczos3 resize of an 8-bit single-channel plane; `None` only for empty input.
pub(super) fn resize_gray(
    width: u32,
    height: u32,
    plane: &[u8],
    new_width: u32,
    new_height: u32,
) -> Option<Vec<u8>> {
    let src = ImageRef::new(width, height, plane, PixelType::U8).ok()?;
    let mut dst = Image::new(new_width, new_height, PixelType::U8);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    with_resizer(|resizer| resizer.resize(&src, &mut dst, &options)).ok()?;
    Some(dst.into_vec())
}
