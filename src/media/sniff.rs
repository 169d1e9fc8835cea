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
pub(super) fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let ihdr = bytes.get(PNG_SIGNATURE.len()..PNG_SIGNATURE.len() + 16)?;
    if &ihdr[4..8] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(ihdr[8..12].try_into().ok()?);
    let height = u32::from_be_bytes(ihdr[12..16].try_into().ok()?);
    Some((width, height))
}
