//! File-type detection from magic bytes.
//!
//! The client's filename and Content-Type are never consulted: they are trivially
//! spoofed, and a decoder picked from them is an easy way to reach less-hardened
//! code paths.

use super::{PhotoError, SourceFormat};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Returns the accepted format, or `UnsupportedType` naming the format when it is
/// one that people commonly try to upload, so the message can tell them what is wrong.
pub(super) fn detect(bytes: &[u8]) -> Result<SourceFormat, PhotoError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        return Ok(SourceFormat::Png);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(SourceFormat::Webp);
    }
    Err(PhotoError::UnsupportedType {
        detected: name_of_rejected(bytes),
    })
}

fn name_of_rejected(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF")
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("TIFF")
    } else if bytes.starts_with(b"%PDF-") {
        Some("PDF")
    } else if bytes.starts_with(b"BM") && bytes.len() >= 14 {
        Some("BMP")
    } else if bytes.get(4..8) == Some(b"ftyp") {
        iso_bmff_name(bytes)
    } else {
        None
    }
}

/// iPhones upload HEIC by default, so this is the rejection users hit most often.
/// The major brand is usually enough; `mif1`/`msf1` are generic HEIF brands whose
/// compatible-brands list says whether the payload is HEVC (HEIC) or AV1 (AVIF).
fn iso_bmff_name(bytes: &[u8]) -> Option<&'static str> {
    let brand_name = |brand: &[u8]| match brand {
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"hevm" | b"hevs" => {
            Some("HEIC")
        }
        b"avif" | b"avis" => Some("AVIF"),
        _ => None,
    };
    let major = bytes.get(8..12)?;
    if let Some(name) = brand_name(major) {
        return Some(name);
    }
    if major != b"mif1" && major != b"msf1" {
        return None;
    }
    let box_len = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    // Compatible brands follow the major brand and the 4-byte minor version.
    let compatible = bytes.get(16..box_len.min(bytes.len()))?;
    compatible
        .chunks_exact(4)
        .find_map(brand_name)
        .or(Some("HEIF"))
}

/// Width and height from a PNG's IHDR, which the format requires to be the first
/// chunk. Parsed here rather than through a decoder because a decoder reads on to
/// the first IDAT, so a bomb consisting of a bare header would be reported as
/// corrupt instead of as too large.
/// The largest size a WebP declares, by area: its canvas (`VP8X`) and every
/// frame's own bitstream header (`VP8 `, `VP8L`, and inside each `ANMF`), read
/// from the chunks alone. image-webp compares a frame with the canvas only
/// after decoding it, so a 16383×16383 frame behind a small canvas would be
/// decoded in full before being refused. None when the chunks do not hold
/// together.
pub(super) fn webp_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut sizes = Vec::new();
    webp_sizes(bytes.get(12..)?, &mut sizes)?;
    sizes
        .into_iter()
        .max_by_key(|&(w, h)| u64::from(w) * u64::from(h))
}

/// Pushes the size each chunk of `chunks` declares, recursing into animation
/// frames.
fn webp_sizes(chunks: &[u8], sizes: &mut Vec<(u32, u32)>) -> Option<()> {
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let le16 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8;
    let mut rest = chunks;
    while rest.len() >= 8 {
        let len = usize::try_from(u32::from_le_bytes(rest[4..8].try_into().ok()?)).ok()?;
        let payload = rest.get(8..8usize.checked_add(len)?)?;
        match &rest[..4] {
            b"VP8X" => {
                let canvas = payload.get(4..10)?;
                sizes.push((le24(&canvas[..3]) + 1, le24(&canvas[3..]) + 1));
            }
            // A key frame: a 3-byte tag, the start code, then 14-bit sizes.
            b"VP8 " => {
                let header = payload.get(3..10)?;
                if header[..3] != [0x9d, 0x01, 0x2a] {
                    return None;
                }
                sizes.push((le16(&header[3..5]) & 0x3fff, le16(&header[5..7]) & 0x3fff));
            }
            // The signature byte, then width - 1 and height - 1 in 14 bits each.
            b"VP8L" => {
                let bits = u32::from_le_bytes(payload.get(1..5)?.try_into().ok()?);
                sizes.push(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1));
            }
            // Offsets, then width - 1 and height - 1, duration and flags, then
            // the frame's own chunks.
            b"ANMF" => {
                let frame = payload.get(6..12)?;
                sizes.push((le24(&frame[..3]) + 1, le24(&frame[3..]) + 1));
                webp_sizes(payload.get(16..)?, sizes)?;
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        rest = rest.get(8 + len + (len & 1)..).unwrap_or_default();
    }
    Some(())
}

pub(super) fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let ihdr = bytes.get(PNG_SIGNATURE.len()..PNG_SIGNATURE.len() + 16)?;
    if &ihdr[4..8] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(ihdr[8..12].try_into().ok()?);
    let height = u32::from_be_bytes(ihdr[12..16].try_into().ok()?);
    Some((width, height))
}
