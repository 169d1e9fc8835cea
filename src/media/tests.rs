use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use jpeg_encoder::{ColorType, Encoder};

use super::raster::RgbImage;
use super::*;

const STREET: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/photos/street-12mp.jpg"
));
const ROTATED: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/photos/rotated-exif6.jpg"
));
const PNG: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/photos/no-exif.png"
));

fn process(bytes: &[u8]) -> Result<ProcessedPhoto, PhotoError> {
    process_photo(bytes, &PhotoLimits::default())
}

/// Decodes an output JPEG independently of the pipeline under test.
fn decode_rgb(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let pixels = decoder.decode().expect("output JPEG decodes");
    let info = decoder.info().expect("info after decode");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    (u32::from(info.width), u32::from(info.height), pixels)
}

fn pixel_at(image: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 3] {
    let at = ((y * image.0 + x) * 3) as usize;
    [image.2[at], image.2[at + 1], image.2[at + 2]]
}

fn is_red([r, g, b]: [u8; 3]) -> bool {
    r > 180 && g < 80 && b < 80
}

fn is_blue([r, g, b]: [u8; 3]) -> bool {
    b > 180 && r < 80 && g < 80
}

fn encode_test_jpeg(
    width: u16,
    height: u16,
    pixels: &[u8],
    color: ColorType,
    exif: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 95);
    if let Some(exif) = exif {
        encoder.add_exif_metadata(exif).expect("exif fits");
    }
    encoder
        .encode(pixels, width, height, color)
        .expect("test image encodes");
    out
}

/// Big-endian TIFF with a single IFD0 entry: Orientation (0x0112, SHORT).
fn exif_with_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    tiff
}

/// Marker codes of every segment before the first scan.
fn header_markers(jpeg: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() {
        assert_eq!(jpeg[pos], 0xFF, "segment starts with a marker");
        let marker = jpeg[pos + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
    }
    markers
}

#[test]
fn street_photo_metadata_and_sizes() {
    let photo = process(STREET).expect("fixture processes");
    assert_eq!(photo.format, SourceFormat::Jpeg);
    assert_eq!((photo.width, photo.height), (4000, 3000));
    assert_eq!((photo.display.width, photo.display.height), (1280, 960));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (320, 240));
    assert_eq!(decode_rgb(&photo.display.bytes).0, 1280);
    assert_eq!(decode_rgb(&photo.thumbnail.bytes).0, 320);

    let gps = photo.gps.expect("GPS present");
    assert!((gps.lat - 31.8753).abs() < 1e-4, "lat {}", gps.lat);
    assert!((gps.lon - 120.5539).abs() < 1e-4, "lon {}", gps.lon);

    let taken = photo.taken_at.expect("capture time present");
    let local = NaiveDate::from_ymd_opt(2026, 5, 12).and_then(|d| d.and_hms_opt(9, 41, 27));
    assert_eq!(Some(taken.local), local);
    assert_eq!(taken.offset, FixedOffset::east_opt(8 * 3600));
    // The recorded offset wins over the city's zone.
    assert_eq!(
        taken.to_utc(chrono_tz::America::New_York),
        Utc.with_ymd_and_hms(2026, 5, 12, 1, 41, 27).single()
    );

    assert_eq!(photo.sha256, hex::encode(Sha256::digest(STREET)));
    assert_eq!(photo.sha256.len(), 64);
}

#[test]
fn capture_time_without_offset_uses_city_zone() {
    let taken = CaptureTime {
        local: NaiveDate::from_ymd_opt(2026, 5, 12)
            .and_then(|d| d.and_hms_opt(9, 41, 27))
            .expect("valid date"),
        offset: None,
    };
    assert_eq!(
        taken.to_utc(chrono_tz::Asia::Shanghai),
        Utc.with_ymd_and_hms(2026, 5, 12, 1, 41, 27).single()
    );
}

#[test]
fn orientation_6_is_turned_upright() {
    let photo = process(ROTATED).expect("fixture processes");
    assert_eq!((photo.width, photo.height), (300, 400));
    assert_eq!((photo.display.width, photo.display.height), (300, 400));
    assert!(photo.gps.is_some());

    let display = decode_rgb(&photo.display.bytes);
    assert_eq!((display.0, display.1), (300, 400));
    assert!(
        is_red(pixel_at(&display, 290, 10)),
        "top-right {:?}",
        pixel_at(&display, 290, 10)
    );
    assert!(
        is_blue(pixel_at(&display, 10, 390)),
        "bottom-left {:?}",
        pixel_at(&display, 10, 390)
    );
    assert!(
        !is_red(pixel_at(&display, 10, 10)),
        "top-left must not be red"
    );
}

#[test]
fn never_upscaled() {
    let photo = process(ROTATED).expect("fixture processes");
    assert_eq!(photo.display.width.max(photo.display.height), 400);
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (240, 320));
}

#[test]
fn outputs_carry_no_metadata() {
    for photo in [process(STREET), process(ROTATED)] {
        let photo = photo.expect("fixture processes");
        for jpeg in [&photo.display.bytes, &photo.thumbnail.bytes] {
            let markers = header_markers(jpeg);
            assert!(markers.contains(&0xDA), "a scan follows the header");
            // APP0 is the JFIF header; APP1–APP15 and COM would be metadata.
            let metadata: Vec<_> = markers
                .iter()
                .filter(|m| matches!(m, 0xE1..=0xEF | 0xFE))
                .collect();
            assert!(metadata.is_empty(), "metadata segments {metadata:x?}");
            for needle in [&b"Exif"[..], b"GPS", b"SN-REDACT", b"Xiaomi", b"Redmi"] {
                assert!(
                    !jpeg.windows(needle.len()).any(|w| w == needle),
                    "output contains {needle:?}"
                );
            }
        }
    }
}

#[test]
fn png_is_processed() {
    let photo = process(PNG).expect("fixture processes");
    assert_eq!(photo.format, SourceFormat::Png);
    assert_eq!(photo.format.mime(), "image/png");
    assert_eq!((photo.width, photo.height), (640, 480));
    assert_eq!((photo.display.width, photo.display.height), (640, 480));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (320, 240));
    assert!(photo.gps.is_none() && photo.taken_at.is_none());
    assert_eq!(decode_rgb(&photo.display.bytes).0, 640);
}

#[test]
fn transparent_png_is_flattened_onto_white() {
    let mut png = Vec::new();
    image::RgbaImage::from_pixel(8, 8, image::Rgba([0, 0, 0, 0]))
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .expect("test PNG encodes");
    let photo = process(&png).expect("PNG processes");
    let [r, g, b] = pixel_at(&decode_rgb(&photo.display.bytes), 4, 4);
    assert!(r > 245 && g > 245 && b > 245, "got {r},{g},{b}");
}

#[test]
fn png_bomb_is_refused_from_the_header() {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());

    let started = std::time::Instant::now();
    let result = process(&png);
    assert_eq!(
        result.err(),
        Some(PhotoError::TooManyPixels {
            width: 100_000,
            height: 100_000,
            limit: 50_000_000
        })
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(5));
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn oversized_jpeg_header_is_refused() {
    let limits = PhotoLimits {
        max_pixels: 1_000_000,
        ..PhotoLimits::default()
    };
    assert!(matches!(
        process_photo(STREET, &limits),
        Err(PhotoError::TooManyPixels {
            width: 4000,
            height: 3000,
            ..
        })
    ));
}

#[test]
fn truncated_jpeg_is_corrupt() {
    for data in [STREET, ROTATED] {
        for cut in [data.len() / 2, data.len() - 2, 200] {
            let result = process(&data[..cut]);
            assert!(
                matches!(result, Err(PhotoError::Corrupt(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }
}

#[test]
fn text_is_unsupported() {
    let result = process(b"this is not a photo, despite the .jpg name\n");
    assert_eq!(
        result.err(),
        Some(PhotoError::UnsupportedType { detected: None })
    );
}

#[test]
fn heic_is_named() {
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0";
    let error = process(heic).expect_err("HEIC is rejected");
    assert_eq!(
        error,
        PhotoError::UnsupportedType {
            detected: Some("HEIC")
        }
    );
    assert_eq!(
        error.to_string(),
        "HEIC is not accepted; accepted types: JPEG, PNG, WebP"
    );

    let generic_heif = b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic";
    assert_eq!(
        process(generic_heif).err(),
        Some(PhotoError::UnsupportedType {
            detected: Some("HEIC")
        })
    );
    for (bytes, name) in [
        (&b"GIF89a\x01\0\x01\0"[..], "GIF"),
        (b"%PDF-1.7\n", "PDF"),
        (b"II*\0\x08\0\0\0", "TIFF"),
        (b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0", "BMP"),
    ] {
        assert_eq!(
            process(bytes).err(),
            Some(PhotoError::UnsupportedType {
                detected: Some(name)
            })
        );
    }
}

#[test]
fn empty_and_oversized_uploads() {
    assert_eq!(process(&[]).err(), Some(PhotoError::Empty));
    let limits = PhotoLimits {
        max_bytes: 1000,
        ..PhotoLimits::default()
    };
    assert_eq!(
        process_photo(STREET, &limits).err(),
        Some(PhotoError::TooLarge {
            size: STREET.len(),
            limit: 1000
        })
    );
}

#[test]
fn grayscale_jpeg_becomes_rgb() {
    let gray: Vec<u8> = (0..64 * 48).map(|i| (i % 64 * 4) as u8).collect();
    let jpeg = encode_test_jpeg(64, 48, &gray, ColorType::Luma, None);
    let photo = process(&jpeg).expect("grayscale JPEG processes");
    let display = decode_rgb(&photo.display.bytes);
    assert_eq!((display.0, display.1), (64, 48));
    let [r, g, b] = pixel_at(&display, 40, 20);
    assert!(
        r.abs_diff(g) <= 2 && g.abs_diff(b) <= 2,
        "grey stays grey: {r},{g},{b}"
    );
}

#[test]
fn cmyk_jpeg_becomes_rgb() {
    // Pure red in CMYK: no cyan, full magenta and yellow, no black.
    let cmyk = [0u8, 255, 255, 0].repeat(32 * 32);
    let jpeg = encode_test_jpeg(32, 32, &cmyk, ColorType::Cmyk, None);
    let photo = process(&jpeg).expect("CMYK JPEG processes");
    let display = decode_rgb(&photo.display.bytes);
    assert!(
        is_red(pixel_at(&display, 16, 16)),
        "got {:?}",
        pixel_at(&display, 16, 16)
    );
}

#[test]
fn phash_survives_reencoding() {
    let original = process(STREET).expect("fixture processes");
    let reencoded = process(&original.display.bytes).expect("display copy processes");
    let distance = hamming_distance(original.phash, reencoded.phash);
    assert!(distance <= 4, "distance {distance}");

    let unrelated = process(ROTATED).expect("fixture processes");
    assert!(hamming_distance(original.phash, unrelated.phash) > 16);
}

#[test]
fn all_orientations_map_dimensions_and_corners() {
    const RED: [u8; 3] = [255, 0, 0];
    const GREEN: [u8; 3] = [0, 255, 0];
    let (w, h) = (64u16, 32u16);
    let mut stored = RgbImage {
        width: u32::from(w),
        height: u32::from(h),
        pixels: [128u8, 128, 128].repeat(usize::from(w) * usize::from(h)),
    };
    // 8×8 blocks so they survive JPEG compression: red top-left, green top-right.
    for y in 0..8 {
        for x in 0..8 {
            let at = |x: usize| (y * usize::from(w) + x) * 3;
            stored.pixels[at(x)..at(x) + 3].copy_from_slice(&RED);
            stored.pixels[at(usize::from(w) - 1 - x)..at(usize::from(w) - 1 - x) + 3]
                .copy_from_slice(&GREEN);
        }
    }
    let is_green = |[r, g, b]: [u8; 3]| g > 180 && r < 80 && b < 80;
    // Where the stored top-left (red) and top-right (green) corners must be displayed.
    #[derive(Clone, Copy, Debug)]
    enum Corner {
        TopLeft,
        TopRight,
        BottomLeft,
        BottomRight,
    }
    use Corner::*;
    let expected = [
        (1, TopLeft, TopRight),
        (2, TopRight, TopLeft),
        (3, BottomRight, BottomLeft),
        (4, BottomLeft, BottomRight),
        (5, TopLeft, BottomLeft),
        (6, TopRight, BottomRight),
        (7, BottomRight, TopRight),
        (8, BottomLeft, TopLeft),
    ];
    for (orientation, red_at, green_at) in expected {
        let jpeg = encode_test_jpeg(
            w,
            h,
            &stored.pixels,
            ColorType::Rgb,
            Some(&exif_with_orientation(orientation)),
        );
        let photo = process(&jpeg).expect("test JPEG processes");
        let swapped = orientation >= 5;
        let (dw, dh) = if swapped { (32, 64) } else { (64, 32) };
        assert_eq!(
            (photo.width, photo.height),
            (dw, dh),
            "orientation {orientation}"
        );
        let display = decode_rgb(&photo.display.bytes);
        assert_eq!(
            (display.0, display.1),
            (dw, dh),
            "orientation {orientation}"
        );
        let sample = |corner: Corner| {
            let (x, y) = match corner {
                TopLeft => (3, 3),
                TopRight => (dw - 4, 3),
                BottomLeft => (3, dh - 4),
                BottomRight => (dw - 4, dh - 4),
            };
            pixel_at(&display, x, y)
        };
        assert!(
            is_red(sample(red_at)),
            "orientation {orientation}: red not at {red_at:?}"
        );
        assert!(
            is_green(sample(green_at)),
            "orientation {orientation}: green not at {green_at:?}"
        );
    }
}

#[test]
fn invalid_orientation_is_ignored() {
    let pixels = [200u8, 100, 50].repeat(16 * 8);
    let jpeg = encode_test_jpeg(
        16,
        8,
        &pixels,
        ColorType::Rgb,
        Some(&exif_with_orientation(9)),
    );
    let photo = process(&jpeg).expect("bad EXIF does not fail the upload");
    assert_eq!((photo.width, photo.height), (16, 8));
}

#[test]
fn garbage_exif_is_ignored() {
    let pixels = [200u8, 100, 50].repeat(16 * 8);
    let jpeg = encode_test_jpeg(
        16,
        8,
        &pixels,
        ColorType::Rgb,
        Some(b"MM\0\x2a\xff\xff\xff\xffjunk"),
    );
    let photo = process(&jpeg).expect("bad EXIF does not fail the upload");
    assert!(photo.gps.is_none() && photo.taken_at.is_none());
}

#[test]
fn error_messages_are_user_facing() {
    assert_eq!(
        PhotoError::UnsupportedType { detected: None }.to_string(),
        "this file type is not accepted; accepted types: JPEG, PNG, WebP"
    );
    assert_eq!(
        PhotoError::TooLarge {
            size: 20 * 1024 * 1024,
            limit: 15 * 1024 * 1024
        }
        .to_string(),
        "the photo is too large (20.0 MB); the maximum is 15.0 MB"
    );
    assert_eq!(
        PhotoError::TooManyPixels {
            width: 100_000,
            height: 100_000,
            limit: 50_000_000
        }
        .to_string(),
        "the photo is 100000×100000 pixels, more than the maximum of 50 megapixels"
    );
}
