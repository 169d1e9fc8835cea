//! Pixel operations shared by every source format and both JPEG backends.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::PhotoError;

/// Multi-megabyte pixel buffers kept per thread between photos. Handing the kernel
/// fresh pages costs a fault per 4 KiB: for a 12 MP photo that was ~7 ms of a
/// ~50 ms pipeline, more than the resize itself, because glibc returns freed blocks
/// this large to the kernel. Photos are processed on a blocking pool, so a thread
/// keeps at most two spare buffers and one resizer scratch area, each capped at
/// [`MAX_RETAINED`]; anything larger (only uploads near the pixel limit) is freed.
#[derive(Default)]
struct Scratch {
    spare: Vec<Vec<u8>>,
    resizer: Resizer,
}

const MAX_RETAINED: usize = 24 << 20;
const MAX_SPARE: usize = 2;

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
        if spare.len() < MAX_SPARE {
            spare.push(buf);
        } else if let Some(smallest) = spare.iter_mut().min_by_key(|b| b.capacity())
            && smallest.capacity() < buf.capacity()
        {
            *smallest = buf;
        }
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

/// Tightly packed 8-bit RGB, the one pixel layout the pipeline works in after decode.
pub(super) struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    pub fn long_edge(&self) -> u32 {
        self.width.max(self.height)
    }

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

    /// Blends onto white: citizens' screenshots with transparency would otherwise
    /// turn black in a JPEG, hiding whatever was drawn in dark ink.
    pub fn from_rgba_on_white(width: u32, height: u32, rgba: &[u8]) -> Self {
        let pixels = rgba
            .chunks_exact(4)
            .flat_map(|px| {
                let alpha = u16::from(px[3]);
                [px[0], px[1], px[2]]
                    .map(|v| ((u16::from(v) * alpha + 255 * (255 - alpha) + 127) / 255) as u8)
            })
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    /// Scales so the long edge is at most `max_edge`, never enlarging: an upscaled
    /// copy costs bandwidth and storage while adding no detail. `None` means the
    /// image already fits.
    pub fn fit_within(
        &self,
        max_edge: u32,
        filter: FilterType,
    ) -> Result<Option<Self>, PhotoError> {
        let long = self.long_edge();
        if long <= max_edge {
            return Ok(None);
        }
        // Fits in u32: edge <= long, so the result is at most max_edge.
        let scale = |edge: u32| {
            let scaled =
                (u64::from(edge) * u64::from(max_edge) + u64::from(long) / 2) / u64::from(long);
            (scaled as u32).max(1)
        };
        let (width, height) = (scale(self.width), scale(self.height));
        let resize_failed = |error: String| {
            tracing::error!(%error, "resize of a decoded photo failed");
            PhotoError::Corrupt("the photo could not be processed".into())
        };
        let src = ImageRef::new(self.width, self.height, &self.pixels, PixelType::U8x3)
            .map_err(|e| resize_failed(e.to_string()))?;
        let buffer = take_buffer(width as usize * height as usize * 3);
        let mut dst = Image::from_vec_u8(width, height, buffer, PixelType::U8x3)
            .map_err(|e| resize_failed(e.to_string()))?;
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
        with_resizer(|resizer| resizer.resize(&src, &mut dst, &options))
            .map_err(|e| resize_failed(e.to_string()))?;
        Ok(Some(Self {
            width,
            height,
            pixels: dst.into_vec(),
        }))
    }

    /// Applies an EXIF orientation (1–8), returning the image as it should be displayed.
    pub fn oriented(self, orientation: u8) -> Self {
        let (w, h) = (self.width as usize, self.height as usize);
        // For each displayed pixel (x, y), where to read it in the stored image.
        let source: fn(usize, usize, usize, usize) -> (usize, usize) = match orientation {
            2 => |x, y, w, _| (w - 1 - x, y),         // mirrored
            3 => |x, y, w, h| (w - 1 - x, h - 1 - y), // rotated 180°
            4 => |x, y, _, h| (x, h - 1 - y),         // flipped
            5 => |x, y, _, _| (y, x),                 // transposed
            6 => |x, y, _, h| (y, h - 1 - x),         // rotate 90° clockwise to display
            7 => |x, y, w, h| (w - 1 - y, h - 1 - x), // transversed
            8 => |x, y, w, _| (w - 1 - y, x),         // rotate 90° anticlockwise to display
            _ => return self,
        };
        let (out_w, out_h) = if orientation >= 5 { (h, w) } else { (w, h) };
        let mut pixels = take_buffer(self.pixels.len());
        for (i, out) in pixels.chunks_exact_mut(3).enumerate() {
            let (sx, sy) = source(i % out_w, i / out_w, w, h);
            let at = (sy * w + sx) * 3;
            out.copy_from_slice(&self.pixels[at..at + 3]);
        }
        recycle(self.pixels);
        Self {
            width: out_w as u32,
            height: out_h as u32,
            pixels,
        }
    }

    /// BT.601 luma plane, the weighting the perceptual hash was designed around.
    pub fn to_luma(&self) -> Vec<u8> {
        self.pixels
            .chunks_exact(3)
            .map(|px| {
                let [r, g, b] = [px[0], px[1], px[2]].map(u32::from);
                ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
            })
            .collect()
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
