//! A photo kept in the JPEG's own YCbCr planes from decode to encode (turbojpeg
//! build only; the pure-Rust codecs work in RGB).
//!
//! Decoding to planes skips libjpeg-turbo's chroma upsampling and YCbCr→RGB
//! conversion, resizing planes moves half the bytes of RGB (chroma is a quarter
//! size), and encoding from planes skips RGB→YCbCr and chroma downsampling. The
//! luma plane is also exactly the BT.601 luma the perceptual hash wants.

use std::borrow::Cow;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType};

use super::PhotoError;
use super::codec;
use super::raster::{self, Orientation, Raster, resize_failed};

/// Chroma subsampling factors: how many luma samples, across and down, share one
/// chroma sample. Only 1 and 2 occur here, which covers 4:4:4, 4:2:2, 4:4:0 and the
/// 4:2:0 of nearly every camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Subsampling {
    pub across: u32,
    pub down: u32,
}

impl Subsampling {
    /// What the copies are encoded with, whatever the upload used.
    pub const YUV420: Self = Self { across: 2, down: 2 };
}

/// Y, Cb and Cr planes back to back in one buffer, in TurboJPEG's planar layout
/// with row alignment 1, so the decoder writes it and the encoder reads it as is:
/// the luma plane is padded to whole chroma samples, rounding the size up to a
/// multiple of the factors, and each chroma plane is that padded size divided by
/// them. Padding repeats the edge pixels.
pub(crate) struct YccImage {
    pub width: u32,
    pub height: u32,
    pub subsampling: Subsampling,
    pub pixels: Vec<u8>,
}

impl YccImage {
    /// A zeroed image, in a recycled buffer when this thread has one.
    pub fn new(width: u32, height: u32, subsampling: Subsampling) -> Self {
        let mut image = Self {
            width,
            height,
            subsampling,
            pixels: Vec::new(),
        };
        let (luma, chroma) = (image.luma_len(), image.chroma_len());
        image.pixels = raster::take_buffer(luma + 2 * chroma);
        image
    }

    /// Stored size of the luma plane, padding included; its rows are this wide.
    pub fn luma_size(&self) -> (u32, u32) {
        let Subsampling { across, down } = self.subsampling;
        (
            self.width.next_multiple_of(across),
            self.height.next_multiple_of(down),
        )
    }

    /// Size of each chroma plane, which has no padding of its own.
    pub fn chroma_size(&self) -> (u32, u32) {
        let (width, height) = self.luma_size();
        (
            width / self.subsampling.across,
            height / self.subsampling.down,
        )
    }

    /// The Y, Cb and Cr planes.
    pub fn planes(&self) -> [&[u8]; 3] {
        let (luma, rest) = self.pixels.split_at(self.luma_len());
        let (cb, cr) = rest.split_at(self.chroma_len());
        [luma, cb, cr]
    }

    fn planes_mut(&mut self) -> [&mut [u8]; 3] {
        let (luma_len, chroma_len) = (self.luma_len(), self.chroma_len());
        let (luma, rest) = self.pixels.split_at_mut(luma_len);
        let (cb, cr) = rest.split_at_mut(chroma_len);
        [luma, cb, cr]
    }

    fn luma_len(&self) -> usize {
        let (width, height) = self.luma_size();
        width as usize * height as usize
    }

    fn chroma_len(&self) -> usize {
        let (width, height) = self.chroma_size();
        width as usize * height as usize
    }

    /// Repeats the last visible column and row of luma into the padding, as
    /// libjpeg does for the blocks it pads itself: a flat edge costs the encoder
    /// nothing, where leftover samples would add visible ringing at the border.
    fn pad_luma(&mut self) {
        let (stride, rows) = self.luma_size();
        let (stride, rows) = (stride as usize, rows as usize);
        let (width, height) = (self.width as usize, self.height as usize);
        if width == 0 || height == 0 {
            return;
        }
        let [luma, _, _] = self.planes_mut();
        if stride > width {
            for row in luma.chunks_exact_mut(stride).take(height) {
                let edge = row[width - 1];
                row[width..].fill(edge);
            }
        }
        if rows > height {
            let (visible, padding) = luma.split_at_mut(height * stride);
            let last = &visible[(height - 1) * stride..];
            for row in padding.chunks_exact_mut(stride) {
                row.copy_from_slice(last);
            }
        }
    }
}

impl Raster for YccImage {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    /// The copies are always 4:2:0, whatever the upload's subsampling: each plane
    /// is resized on its own, the chroma planes straight to their subsampled size.
    fn fit_within(&self, max_edge: u32, filter: FilterType) -> Result<Option<Self>, PhotoError> {
        let Some((width, height)) = raster::fitted_size(self.width, self.height, max_edge) else {
            return Ok(None);
        };
        let mut out = Self::new(width, height, Subsampling::YUV420);
        let (luma_size, chroma_size) = (self.luma_size(), self.chroma_size());
        let (out_luma, out_chroma) = (out.luma_size(), out.chroma_size());
        let [y, cb, cr] = self.planes();
        let [out_y, out_cb, out_cr] = out.planes_mut();

        // Only the visible luma is resized; the padding is filled in afterwards.
        let extent = (f64::from(self.width), f64::from(self.height));
        let luma = Plane::new(y, luma_size);
        luma.resize_into(extent, out_y, out_luma.0, (width, height), filter)?;

        // A chroma plane spans the visible image divided by the factors, so mapping
        // that span onto the whole output plane keeps chroma centred on its luma.
        // (For an odd output size the last chroma column or row also covers the
        // luma padding, a shift of under half a chroma sample, which is invisible.)
        let extent = (
            extent.0 / f64::from(self.subsampling.across),
            extent.1 / f64::from(self.subsampling.down),
        );
        for (src, dst) in [(cb, out_cb), (cr, out_cr)] {
            Plane::new(src, chroma_size).resize_into(
                extent,
                dst,
                out_chroma.0,
                out_chroma,
                filter,
            )?;
        }
        out.pad_luma();
        Ok(Some(out))
    }

    /// Each plane is turned on its own; a quarter turn swaps the subsampling
    /// factors along with width and height, so 4:2:0 stays 4:2:0.
    fn oriented(self, orientation: u8) -> Self {
        let Some(transform) = Orientation::from_exif(orientation) else {
            return self;
        };
        let (width, height) = transform.displayed_size(self.width, self.height);
        let (across, down) =
            transform.displayed_size(self.subsampling.across, self.subsampling.down);
        let mut out = Self::new(width, height, Subsampling { across, down });
        let (luma_stride, chroma) = (self.luma_size().0, self.chroma_size());
        let (out_luma_stride, out_chroma_stride) = (out.luma_size().0, out.chroma_size().0);
        let [y, cb, cr] = self.planes();
        let [out_y, out_cb, out_cr] = out.planes_mut();
        // Only the visible luma is turned, so the padding ends up right and bottom
        // again. Chroma planes are turned whole: where an odd size puts a padding
        // column on the far side, it moves by under half a chroma sample.
        let visible = (self.width as usize, self.height as usize);
        transform.apply::<1>(
            y,
            visible,
            luma_stride as usize,
            out_y,
            out_luma_stride as usize,
        );
        let chroma = (chroma.0 as usize, chroma.1 as usize);
        for (src, dst) in [(cb, out_cb), (cr, out_cr)] {
            transform.apply::<1>(src, chroma, chroma.0, dst, out_chroma_stride as usize);
        }
        out.pad_luma();
        raster::recycle(self.pixels);
        out
    }

    fn luma(&self) -> Cow<'_, [u8]> {
        let [y, _, _] = self.planes();
        let (stride, width) = (self.luma_size().0 as usize, self.width as usize);
        let visible = width * self.height as usize;
        if stride == width {
            Cow::Borrowed(&y[..visible])
        } else {
            Cow::Owned(
                y.chunks_exact(stride)
                    .take(self.height as usize)
                    .flat_map(|row| &row[..width])
                    .copied()
                    .collect(),
            )
        }
    }

    fn encode(&self, quality: u8) -> Result<Vec<u8>, PhotoError> {
        codec::encode_ycc(self, quality)
    }

    fn recycle(self) {
        raster::recycle(self.pixels);
    }
}

/// One stored plane: `width × height` samples, rows one after another.
struct Plane<'a> {
    samples: &'a [u8],
    width: u32,
    height: u32,
}

impl<'a> Plane<'a> {
    fn new(samples: &'a [u8], (width, height): (u32, u32)) -> Self {
        Self {
            samples,
            width,
            height,
        }
    }

    /// Resizes the top-left `extent` of the plane (in samples, fractional for the
    /// chroma of odd-sized images) into the top-left `width × height` of `dst`,
    /// whose rows are `dst_stride` apart.
    ///
    /// fast_image_resize's single-channel horizontal pass drops to scalar code for
    /// kernels under 8 taps, which ours all are, and was slower on the planes than
    /// on the whole RGB image. Its four-channel pass is vectorised at any kernel
    /// size, so the plane is resized vertically first (vectorised across rows
    /// anyway), then horizontally four rows at a time, interleaved as the four
    /// channels of one image. Vertical first also means the horizontal pass has
    /// only the output's rows to do.
    fn resize_into(
        &self,
        extent: (f64, f64),
        dst: &mut [u8],
        dst_stride: u32,
        (width, height): (u32, u32),
        filter: FilterType,
    ) -> Result<(), PhotoError> {
        let src = ImageRef::new(self.width, self.height, self.samples, PixelType::U8)
            .map_err(resize_failed)?;
        let mut tall = scratch_image(self.width, height, PixelType::U8)?;
        // Full stored width, so this pass is vertical only.
        raster::resize(&src, (f64::from(self.width), extent.1), &mut tall, filter)?;

        let groups = height.div_ceil(4);
        let mut quads = scratch_image(self.width, groups, PixelType::U8x4)?;
        interleave_rows(tall.buffer(), self.width as usize, quads.buffer_mut());
        raster::recycle(tall.into_vec());
        let mut narrow = scratch_image(width, groups, PixelType::U8x4)?;
        // Same row count, so this pass is horizontal only.
        raster::resize(&quads, (extent.0, f64::from(groups)), &mut narrow, filter)?;
        raster::recycle(quads.into_vec());
        let dst_rows = dst.chunks_mut(dst_stride as usize).take(height as usize);
        deinterleave_rows(narrow.buffer(), width as usize, dst_rows);
        raster::recycle(narrow.into_vec());
        Ok(())
    }
}

/// An intermediate image in a recycled buffer.
fn scratch_image(
    width: u32,
    height: u32,
    pixel_type: PixelType,
) -> Result<Image<'static>, PhotoError> {
    let len = width as usize * height as usize * pixel_type.size();
    Image::from_vec_u8(width, height, raster::take_buffer(len), pixel_type).map_err(resize_failed)
}

/// Packs each group of four rows of `width` samples into one row of four-byte
/// pixels, the first row in the first byte; a short last group repeats the last
/// row.
fn interleave_rows(plane: &[u8], width: usize, out: &mut [u8]) {
    let rows: Vec<&[u8]> = plane.chunks_exact(width).collect();
    let Some(&last) = rows.last() else {
        return;
    };
    let row = |y: usize| rows.get(y).copied().unwrap_or(last);
    for (group, out) in out.chunks_exact_mut(width * 4).enumerate() {
        let y = group * 4;
        let samples = row(y)
            .iter()
            .zip(row(y + 1))
            .zip(row(y + 2))
            .zip(row(y + 3));
        for (px, (((&a, &b), &c), &d)) in out.chunks_exact_mut(4).zip(samples) {
            px.copy_from_slice(&[a, b, c, d]);
        }
    }
}

/// The inverse of [`interleave_rows`]: fills each of `rows` (whose first `width`
/// samples are picture) from its lane of the packed rows.
fn deinterleave_rows<'a>(quads: &[u8], width: usize, rows: impl Iterator<Item = &'a mut [u8]>) {
    for (y, row) in rows.enumerate() {
        let Some(packed) = quads.chunks_exact(width * 4).nth(y / 4) else {
            return;
        };
        for (sample, px) in row[..width].iter_mut().zip(packed.chunks_exact(4)) {
            *sample = px[y % 4];
        }
    }
}
