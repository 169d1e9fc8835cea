//! A walk over a JPEG's marker segments.
//!
//! It yields the frame size (so oversized images are refused before any decoder
//! allocates), the EXIF payload and the number of scans (so a file built to cost
//! minutes of decoding is refused before any decoding), without decoding
//! entropy-coded data. Both JPEG backends share it, which keeps the checks
//! identical whichever is compiled in.

const EXIF_ID: &[u8] = b"Exif\0\0";

pub(super) struct JpegHeader<'a> {
    pub width: u32,
    pub height: u32,
    /// TIFF-structured EXIF block (after the `Exif\0\0` identifier), if present.
    pub exif: Option<&'a [u8]>,
    /// Start-of-scan markers in the whole file. Every scan of a progressive JPEG
    /// is a pass over the whole image, and nothing in the format bounds their
    /// number.
    pub scans: usize,
}

/// Returns `None` when the markers are malformed or no frame header precedes the
/// first scan; such a file cannot be decoded either. A file that ends inside a
/// scan's data is counted up to there and left for the decoder to report.
pub(super) fn parse(bytes: &[u8]) -> Option<JpegHeader<'_>> {
    let mut pos = 2; // past SOI
    let mut exif = None;
    let mut frame = None;
    let mut scans = 0;
    loop {
        if frame.is_some() && pos >= bytes.len() {
            break;
        }
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
        if marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(pos)?, *bytes.get(pos + 1)?]));
        // The length counts its own two bytes.
        if len < 2 {
            return None;
        }
        let segment = bytes.get(pos + 2..pos + len)?;
        match marker {
            // APP1: the first EXIF block before the frame wins, as in every other
            // reader.
            0xE1 if exif.is_none() && frame.is_none() => exif = segment.strip_prefix(EXIF_ID),
            // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let height = u32::from(u16::from_be_bytes([*segment.get(1)?, *segment.get(2)?]));
                let width = u32::from(u16::from_be_bytes([*segment.get(3)?, *segment.get(4)?]));
                // A zero height defers the size to a DNL marker after the first
                // scan; no camera writes that and the decoders reject it anyway.
                if width == 0 || height == 0 {
                    return None;
                }
                frame.get_or_insert((width, height));
            }
            0xDA => {
                // No scan may come before the frame header.
                frame?;
                scans += 1;
                pos = end_of_entropy_data(bytes, pos + len);
                continue;
            }
            _ => {}
        }
        pos += len;
    }
    let (width, height) = frame?;
    Some(JpegHeader {
        width,
        height,
        exif,
        scans,
    })
}

/// Where the marker after a scan's entropy-coded data starts (or the end of the
/// file): at the first 0xFF that is neither a stuffed zero nor a restart marker.
/// Fill bytes before that marker are left for the walk to skip.
fn end_of_entropy_data(bytes: &[u8], from: usize) -> usize {
    let mut pos = from;
    while let Some(offset) = bytes
        .get(pos..)
        .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
    {
        pos += offset;
        match bytes.get(pos + 1) {
            Some(0x00 | 0xD0..=0xD7) => pos += 2,
            _ => return pos,
        }
    }
    bytes.len()
}
