//! A walk over a JPEG's marker segments up to the first scan.
//!
//! It yields the frame size (so oversized images are refused before any decoder
//! allocates) and the EXIF payload, without touching entropy-coded data. Both JPEG
//! backends share it, which keeps the size check identical whichever is compiled in.

const EXIF_ID: &[u8] = b"Exif\0\0";

pub(super) struct JpegHeader<'a> {
    pub width: u32,
    pub height: u32,
    /// TIFF-structured EXIF block (after the `Exif\0\0` identifier), if present.
    pub exif: Option<&'a [u8]>,
}

/// Returns `None` when the markers are malformed or no frame header precedes the
/// first scan; such a file cannot be decoded either.
pub(super) fn parse(bytes: &[u8]) -> Option<JpegHeader<'_>> {
    let mut pos = 2; // past SOI
    let mut exif = None;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes (B.1.1.2).
        while *bytes.get(pos)? == 0xFF && *bytes.get(pos + 1)? == 0xFF {
            pos += 1;
        }
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(pos + 1)?;
        pos += 2;
        // Stand-alone markers carry no length field.
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(pos)?, *bytes.get(pos + 1)?]));
        // The length counts its own two bytes.
        if len < 2 {
            return None;
        }
        let segment = bytes.get(pos + 2..pos + len)?;
        match marker {
            // APP1: the first EXIF block wins, as in every other reader.
            0xE1 if exif.is_none() => exif = segment.strip_prefix(EXIF_ID),
            // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let height = u32::from(u16::from_be_bytes([*segment.get(1)?, *segment.get(2)?]));
                let width = u32::from(u16::from_be_bytes([*segment.get(3)?, *segment.get(4)?]));
                // A zero height defers the size to a DNL marker after the first
                // scan; no camera writes that and the decoders reject it anyway.
                if width == 0 || height == 0 {
                    return None;
                }
                return Some(JpegHeader {
                    width,
                    height,
                    exif,
                });
            }
            // SOS or EOI before any frame header.
            0xDA | 0xD9 => return None,
            _ => {}
        }
        pos += len;
    }
}
