use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

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
    // jpeg-encoder's default at quality 95.
    encode_sampled_jpeg(width, height, pixels, color, SamplingFactor::R_4_4_4, exif)
}

fn encode_sampled_jpeg(
    width: u16,
    height: u16,
    pixels: &[u8],
    color: ColorType,
    sampling: SamplingFactor,
    exif: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, 95);
    encoder.set_sampling_factor(sampling);
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

/// The samples are rewritten in their own buffer, front to back when pixels
/// shrink and back to front when they grow: every pixel must come out as if
/// converted into a fresh buffer.
#[test]
fn samples_become_rgb_in_place_pixel_for_pixel() {
    let rgb = |samples: &[u8], per_pixel: usize| {
        RgbImage::from_samples(2, 2, samples.to_vec(), per_pixel)
            .map(|image| image.pixels)
            .expect("1 to 4 samples a pixel")
    };
    assert_eq!(
        rgb(&[0, 80, 160, 255], 1),
        [0, 0, 0, 80, 80, 80, 160, 160, 160, 255, 255, 255]
    );
    // Grey 0 at full, half and no alpha on white, then white at full alpha.
    assert_eq!(
        rgb(&[0, 255, 0, 128, 0, 0, 255, 255], 2),
        [0, 0, 0, 127, 127, 127, 255, 255, 255, 255, 255, 255]
    );
    let pixels: Vec<u8> = (0..12).collect();
    assert_eq!(rgb(&pixels, 3), pixels);
    assert_eq!(
        rgb(
            &[255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 0, 128, 10, 20, 30, 255],
            4
        ),
        [255, 0, 0, 255, 255, 255, 127, 127, 127, 10, 20, 30]
    );
    assert!(RgbImage::from_samples(2, 2, vec![0; 20], 5).is_none());
}

#[test]
fn sixteen_bit_pngs_are_processed_at_eight_bits() {
    let mut rgba = Vec::new();
    image::ImageBuffer::<image::Rgba<u16>, _>::from_pixel(8, 8, image::Rgba([65535, 0, 0, 65535]))
        .write_to(&mut Cursor::new(&mut rgba), ImageFormat::Png)
        .expect("test PNG encodes");
    let mut gray_alpha = Vec::new();
    image::ImageBuffer::<image::LumaA<u16>, _>::from_pixel(8, 8, image::LumaA([0, 0]))
        .write_to(&mut Cursor::new(&mut gray_alpha), ImageFormat::Png)
        .expect("test PNG encodes");
    let red = process(&rgba).expect("16-bit RGBA PNG processes");
    assert!(is_red(pixel_at(&decode_rgb(&red.display.bytes), 4, 4)));
    let clear = process(&gray_alpha).expect("16-bit grey and alpha PNG processes");
    let [r, g, b] = pixel_at(&decode_rgb(&clear.display.bytes), 4, 4);
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

#[test]
fn webp_is_processed_and_never_upscaled() {
    let mut webp = Vec::new();
    image::RgbImage::from_pixel(400, 200, image::Rgb([220, 30, 30]))
        .write_to(&mut Cursor::new(&mut webp), ImageFormat::WebP)
        .expect("test WebP encodes");
    let photo = process(&webp).expect("WebP processes");
    assert_eq!(photo.format, SourceFormat::Webp);
    assert_eq!(photo.format.mime(), "image/webp");
    assert_eq!((photo.width, photo.height), (400, 200));
    assert_eq!((photo.display.width, photo.display.height), (400, 200));
    assert_eq!((photo.thumbnail.width, photo.thumbnail.height), (320, 160));
    assert!(is_red(pixel_at(
        &decode_rgb(&photo.display.bytes),
        200,
        100
    )));
}

/// A WebP file of `chunks` (FourCC, payload), each padded to an even length.
fn riff_webp(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (fourcc, payload) in chunks {
        body.extend_from_slice(*fourcc);
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        body.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    webp
}

/// Width - 1 and height - 1 as the 24-bit fields of VP8X and ANMF.
fn webp_size_fields(width: u32, height: u32) -> Vec<u8> {
    [width - 1, height - 1]
        .iter()
        .flat_map(|v| v.to_le_bytes()[..3].to_vec())
        .collect()
}

/// Each layout declares a 10000 × 8000 (80 MP) frame and holds no image data,
/// so only a refusal from the headers can give `TooManyPixels`; a decoder would
/// find the data missing. A small canvas (`VP8X`) must not hide a large frame:
/// image-webp compares the two only after decoding the frame.
#[test]
fn webp_bombs_are_refused_from_the_headers() {
    let (width, height) = (10_000u32, 8_000u32);
    let mut lossless = vec![0x2f];
    lossless.extend_from_slice(&((width - 1) | ((height - 1) << 14)).to_le_bytes());
    let mut lossy = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
    lossy.extend_from_slice(&(width as u16).to_le_bytes());
    lossy.extend_from_slice(&(height as u16).to_le_bytes());
    let mut small_canvas = vec![0x02, 0, 0, 0];
    small_canvas.extend(webp_size_fields(64, 64));
    let mut animation_frame = vec![0; 6];
    animation_frame.extend(webp_size_fields(width, height));
    animation_frame.extend_from_slice(&[0x64, 0, 0, 0]);
    animation_frame.extend_from_slice(b"VP8 ");
    animation_frame.extend_from_slice(&(lossy.len() as u32).to_le_bytes());
    animation_frame.extend_from_slice(&lossy);

    for (layout, webp) in [
        ("bare VP8L", riff_webp(&[(b"VP8L", lossless.clone())])),
        (
            "VP8 behind a 64 x 64 canvas",
            riff_webp(&[(b"VP8X", small_canvas.clone()), (b"VP8 ", lossy.clone())]),
        ),
        (
            "VP8L behind a 64 x 64 canvas",
            riff_webp(&[(b"VP8X", small_canvas.clone()), (b"VP8L", lossless)]),
        ),
        (
            "an animation frame behind a 64 x 64 canvas",
            riff_webp(&[(b"VP8X", small_canvas), (b"ANMF", animation_frame)]),
        ),
    ] {
        assert_eq!(
            process(&webp).err(),
            Some(PhotoError::TooManyPixels {
                width,
                height,
                limit: 50_000_000
            }),
            "{layout}"
        );
    }
}

#[test]
fn a_webp_whose_chunks_do_not_hold_together_is_corrupt() {
    let mut lossy = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 64, 0, 48, 0];
    let good = riff_webp(&[(b"VP8 ", lossy.clone())]);
    // A chunk longer than the file, and a key frame without its start code.
    let cut = &good[..good.len() - 4];
    lossy[4] = 0;
    let no_start_code = riff_webp(&[(b"VP8 ", lossy)]);
    for webp in [cut, &no_start_code[..]] {
        let result = process(webp);
        assert!(matches!(result, Err(PhotoError::Corrupt(_))), "{result:?}");
    }
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

/// A progressive JPEG whose scans (everything between the first SOS and EOI)
/// are repeated: jpeg-decoder decodes it, one pass over the image per scan.
fn progressive_jpeg_with_scans_repeated(times: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect();
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, 90);
    encoder.set_progressive(true);
    encoder
        .encode(&pixels, 64, 64, ColorType::Rgb)
        .expect("test image encodes");
    let first_scan = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let (head, scans) = jpeg.split_at(first_scan);
    let scans = scans.strip_suffix(&[0xFF, 0xD9]).expect("ends with EOI");
    let mut flood = head.to_vec();
    for _ in 0..times {
        flood.extend_from_slice(scans);
    }
    flood.extend_from_slice(&[0xFF, 0xD9]);
    flood
}

#[test]
fn progressive_jpeg_with_too_many_scans_is_refused_before_decoding() {
    let progressive = progressive_jpeg_with_scans_repeated(1);
    let scans = jpeg_header::parse(&progressive).expect("header").scans;
    assert!((2..=MAX_JPEG_SCANS).contains(&scans), "{scans} scans");
    process(&progressive).expect("an ordinary progressive JPEG is accepted");

    let flood = progressive_jpeg_with_scans_repeated(MAX_JPEG_SCANS / scans + 1);
    match process(&flood) {
        Err(PhotoError::Corrupt(message)) => assert!(message.contains("scans"), "{message}"),
        other => panic!("expected a refusal for its scans, got {other:?}"),
    }
    // A baseline photo is one scan, however much entropy-coded data it has.
    assert_eq!(jpeg_header::parse(STREET).expect("header").scans, 1);
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

const SAMPLINGS: [SamplingFactor; 4] = [
    SamplingFactor::R_4_4_4,
    SamplingFactor::R_4_2_2,
    SamplingFactor::R_4_2_0,
    SamplingFactor::R_4_4_0,
];

#[test]
fn all_orientations_map_dimensions_and_corners() {
    // Small enough not to be resized, so the decoded image itself is turned; odd
    // sizes put padding in every subsampled layout.
    check_orientations(64, 32, 8, SamplingFactor::R_4_4_4);
    for sampling in SAMPLINGS {
        check_orientations(65, 33, 8, sampling);
    }
}

#[test]
fn large_photos_are_resized_then_turned() {
    // 1/2-scale decode to 1301×700, display 1280×689 (odd, so padded) then
    // turned, thumbnail 320×172.
    for sampling in [SamplingFactor::R_4_2_0, SamplingFactor::R_4_2_2] {
        check_orientations(2602, 1400, 200, sampling);
    }
}

/// Encodes a grey `w`×`h` image with a red block of `block` px at the stored
/// top-left corner and a green one at the top-right, under every EXIF orientation,
/// and checks where the blocks are displayed.
fn check_orientations(w: u16, h: u16, block: usize, sampling: SamplingFactor) {
    const RED: [u8; 3] = [255, 0, 0];
    const GREEN: [u8; 3] = [0, 255, 0];
    let mut stored = [128u8, 128, 128].repeat(usize::from(w) * usize::from(h));
    // Whole 8×8 blocks at least, so they survive JPEG compression.
    for y in 0..block {
        for x in 0..block {
            let at = |x: usize| (y * usize::from(w) + x) * 3;
            stored[at(x)..at(x) + 3].copy_from_slice(&RED);
            stored[at(usize::from(w) - 1 - x)..at(usize::from(w) - 1 - x) + 3]
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
        let case = format!("{w}×{h} {sampling:?} orientation {orientation}");
        let jpeg = encode_sampled_jpeg(
            w,
            h,
            &stored,
            ColorType::Rgb,
            sampling,
            Some(&exif_with_orientation(orientation)),
        );
        let photo = process(&jpeg).expect("test JPEG processes");
        let (w, h) = (u32::from(w), u32::from(h));
        let (dw, dh) = if orientation >= 5 { (h, w) } else { (w, h) };
        assert_eq!((photo.width, photo.height), (dw, dh), "{case}");
        let display = decode_rgb(&photo.display.bytes);
        let (dw, dh) = (display.0, display.1);
        assert_eq!(
            (photo.display.width, photo.display.height),
            (dw, dh),
            "{case}"
        );
        assert_eq!(
            dw > dh,
            photo.width > photo.height,
            "{case}: display {dw}×{dh}"
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
        assert!(is_red(sample(red_at)), "{case}: red not at {red_at:?}");
        assert!(
            is_green(sample(green_at)),
            "{case}: green not at {green_at:?}"
        );
    }
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

/// Whatever layout the backend keeps the pixels in (YCbCr planes with
/// `turbojpeg`), the copies must look like a plain full-size RGB decode resized
/// the same way.
#[test]
fn copies_match_a_full_rgb_reference() {
    let photo = process(STREET).expect("fixture processes");
    let (width, height, pixels) = decode_rgb(STREET);
    let reference = render(
        RgbImage {
            width,
            height,
            pixels,
        },
        1,
    )
    .expect("reference renders");
    for (ours, theirs, what) in [
        (&photo.display, &reference.display, "display"),
        (&photo.thumbnail, &reference.thumbnail, "thumbnail"),
    ] {
        let (ours, theirs) = (decode_rgb(&ours.bytes), decode_rgb(&theirs.bytes));
        assert_eq!((ours.0, ours.1), (theirs.0, theirs.1), "{what}");
        let diff = mean_abs_diff(&ours.2, &theirs.2);
        assert!(diff < 3.0, "{what}: mean abs diff {diff:.2}");
    }
    let distance = hamming_distance(photo.phash, reference.phash);
    assert!(distance <= 4, "phash distance {distance}");
}

/// Every subsampling layout reaches the copies with its colours in place, and
/// odd-sized copies have clean last rows and columns (no stray padding).
#[test]
fn every_subsampling_keeps_colours_up_to_the_edges() {
    // Both sources end as 1280×853 and 320×213. The DCT first halves the larger
    // to 1301×867; the smaller is decoded at full size, or with turbojpeg at 7/8
    // (1400×933), an odd eighth scale with its own inverse DCT.
    for (w, h) in [(2602u16, 1734u16), (1600, 1066)] {
        check_quadrant_colours(w, h);
    }
}

fn check_quadrant_colours(w: u16, h: u16) {
    const COLOURS: [[u8; 3]; 4] = [[200, 40, 40], [40, 160, 60], [50, 60, 200], [230, 210, 60]];
    let quadrant = |x: usize, y: usize| {
        usize::from(x >= usize::from(w) / 2) + 2 * usize::from(y >= usize::from(h) / 2)
    };
    let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|i| COLOURS[quadrant(i % usize::from(w), i / usize::from(w))])
        .collect();
    for sampling in SAMPLINGS {
        let jpeg = encode_sampled_jpeg(w, h, &pixels, ColorType::Rgb, sampling, None);
        let photo = process(&jpeg).expect("test JPEG processes");
        for (copy, size) in [
            (&photo.display, (1280, 853)),
            (&photo.thumbnail, (320, 213)),
        ] {
            let image = decode_rgb(&copy.bytes);
            assert_eq!((image.0, image.1), size, "{w}×{h} {sampling:?}");
            let (cw, ch) = size;
            // Away from the quadrant borders, where the colours blend.
            let margin = 6;
            let edges = (0..cw)
                .flat_map(|x| [(x, 0), (x, ch - 1)])
                .chain((0..ch).flat_map(|y| [(0, y), (cw - 1, y)]))
                .filter(|&(x, y)| x.abs_diff(cw / 2) > margin && y.abs_diff(ch / 2) > margin);
            let centres = [(1, 1), (3, 1), (1, 3), (3, 3)].map(|(x, y)| (cw * x / 4, ch * y / 4));
            for (x, y) in edges.chain(centres) {
                let want = COLOURS[quadrant(
                    (x * u32::from(w) / cw) as usize,
                    (y * u32::from(h) / ch) as usize,
                )];
                let got = pixel_at(&image, x, y);
                let off = want.iter().zip(got).map(|(a, b)| a.abs_diff(b)).max();
                assert!(
                    off.unwrap_or(0) <= 12,
                    "{w}×{h} {sampling:?} {cw}×{ch} at ({x}, {y}): {got:?}, want {want:?}"
                );
            }
        }
    }
}

#[cfg(feature = "turbojpeg")]
mod planar {
    use super::*;
    use crate::media::codec::Decoded;
    use crate::media::planar::{Subsampling, YccImage};
    use crate::media::raster::Raster;

    #[test]
    fn ycbcr_jpegs_decode_to_planes() {
        match codec::decode_jpeg(STREET, DISPLAY_EDGE, u64::MAX) {
            Ok(Decoded::Ycc(image)) => {
                assert_eq!((image.width, image.height), (1500, 1125));
                assert_eq!(image.subsampling, Subsampling::YUV420);
            }
            _ => panic!("the 4:2:0 fixture decodes to planes"),
        }
        let gray = encode_test_jpeg(16, 16, &[90u8; 256], ColorType::Luma, None);
        let cmyk = encode_test_jpeg(16, 16, &[0u8; 1024], ColorType::Cmyk, None);
        for jpeg in [gray, cmyk] {
            assert!(matches!(
                codec::decode_jpeg(&jpeg, DISPLAY_EDGE, u64::MAX),
                Ok(Decoded::Rgb(_))
            ));
        }
    }

    /// The decoder and encoder get the buffer as is, so its layout must be
    /// TurboJPEG's, padding included.
    #[test]
    fn layout_matches_turbojpeg() {
        let layouts = [
            ((2, 2), turbojpeg::Subsamp::Sub2x2),
            ((2, 1), turbojpeg::Subsamp::Sub2x1),
            ((1, 2), turbojpeg::Subsamp::Sub1x2),
            ((1, 1), turbojpeg::Subsamp::None),
        ];
        for ((across, down), subsamp) in layouts {
            for width in 1..=9 {
                for height in 1..=9 {
                    let image = YccImage::new(width, height, Subsampling { across, down });
                    let expected =
                        turbojpeg::yuv_pixels_len(width as usize, 1, height as usize, subsamp);
                    assert_eq!(
                        Some(image.pixels.len()),
                        expected.ok(),
                        "{width}×{height} {subsamp:?}"
                    );
                }
            }
        }
    }

    /// The planar resize (vertical pass, then four rows at a time as one
    /// four-channel image) must agree with resizing each plane on its own.
    #[test]
    fn plane_resize_matches_a_direct_resize() {
        use fast_image_resize::images::{Image, ImageRef};
        use fast_image_resize::{PixelType, ResizeAlg, ResizeOptions, Resizer};

        let (width, height) = (203, 151);
        let mut image = YccImage::new(width, height, Subsampling::YUV420);
        let mut state = 0x2545_f491_u32;
        for sample in &mut image.pixels {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *sample = (state >> 24) as u8;
        }
        let resized = image
            .fit_within(101, DISPLAY_FILTER)
            .expect("planes resize")
            .expect("image is reduced");
        assert_eq!((resized.width, resized.height), (101, 75));

        let layouts = [
            (image.luma_size(), (width, height), resized.luma_size()),
            (image.chroma_size(), (102, 76), resized.chroma_size()),
            (image.chroma_size(), (102, 76), resized.chroma_size()),
        ];
        let planes = image.planes().into_iter().zip(resized.planes());
        for (index, ((src, ours), (stored, visible, out))) in planes.zip(layouts).enumerate() {
            let src = ImageRef::new(stored.0, stored.1, src, PixelType::U8).expect("plane");
            // Luma is compared over the visible part, chroma over the whole plane.
            let (dst_w, dst_h) = if index == 0 { (101, 75) } else { out };
            let mut direct = Image::new(dst_w, dst_h, PixelType::U8);
            let extent = if index == 0 {
                (f64::from(visible.0), f64::from(visible.1))
            } else {
                (f64::from(width) / 2.0, f64::from(height) / 2.0)
            };
            let options = ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(DISPLAY_FILTER))
                .crop(0.0, 0.0, extent.0, extent.1);
            Resizer::new()
                .resize(&src, &mut direct, &options)
                .expect("direct resize");
            let ours: Vec<u8> = ours
                .chunks_exact(out.0 as usize)
                .take(dst_h as usize)
                .flat_map(|row| &row[..dst_w as usize])
                .copied()
                .collect();
            let worst = ours
                .iter()
                .zip(direct.buffer())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            let mean = mean_abs_diff(&ours, direct.buffer());
            assert!(
                worst <= Some(3) && mean < 0.6,
                "plane {index}: worst {worst:?}, mean {mean:.2}"
            );
        }
    }

    #[test]
    fn luma_is_the_visible_plane() {
        let mut image = YccImage::new(3, 2, Subsampling::YUV420);
        let [y, _, _] = image.planes();
        assert_eq!(y.len(), 4 * 2);
        image.pixels[..8].copy_from_slice(&[1, 2, 3, 0, 4, 5, 6, 0]);
        assert_eq!(&*image.luma(), &[1, 2, 3, 4, 5, 6]);
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
