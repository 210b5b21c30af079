//! Decoding image files into RGB, with the checks that turn bad files into named problems.
//!
//! Colour handling, the same for every input (as PIL's `convert("RGB")` except for 16-bit
//! input, so models trained in PyTorch see the same pixels):
//! - grayscale is replicated into three channels;
//! - an alpha channel is dropped (not composited);
//! - 16-bit samples are scaled to 8 bits (`v * 255 / 65535`, rounded; PIL clips instead);
//! - CMYK JPEGs (including Adobe's inverted CMYK) are converted to RGB by the JPEG decoder.
//!
//! Every file is untrusted, so nothing here panics on its content and every read is
//! bounded: a file longer than [`MAX_IMAGE_FILE_BYTES`] is reported without reading any
//! of it, [`probe`] reads at most [`MAX_HEADER_BYTES`], and an image with more pixels
//! than the caller's `max_pixels` is reported before it is decoded.
//!
//! A JPEG is complete when its decoder needs no byte it does not have. The JPEG decoder
//! `image` uses (zune-jpeg, in its lenient mode) does not say so: when the entropy-coded
//! data runs out, at the end of the file or at an end-of-image marker glued onto half a
//! file, it pads with zero bits (or grey) and reports success. So [`decode_rgb_bytes`]
//! decodes a JPEG twice, the second time with a fixed run of bytes spliced in before its
//! end-of-image marker: a complete scan ends before the splice, which changes nothing;
//! a truncated one reads the splice instead of zeros, and the pixels differ. Bytes after
//! the end-of-image marker (the trailers phones append) are never looked at. The cost is
//! a second decode of every JPEG. One cut passes: a progressive JPEG cut exactly between
//! two of its scans (after the second), an end marker glued on, which is a complete
//! image of lower quality. Sequential JPEGs with one scan per component (rare; cameras
//! and web encoders interleave the components in one scan) are only checked for an
//! end-of-image marker where their segments say it is.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader, RgbImage};

use crate::problem::ProblemKind;

/// Default decompression-bomb guard: 64 megapixels, far above any photo a classifier needs.
pub const DEFAULT_MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// The largest image file read: 256 MiB. A 64-megapixel photo is at most about 200 MB as
/// an uncompressed PNG (and a few tens as a JPEG), so a larger file is no photo vista
/// would train on, and reading it would only cost memory (one file per decoding thread).
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 << 20;

/// The most bytes [`probe`] reads looking for an image's dimensions: 16 MiB. JPEG and
/// PNG put them after their metadata (EXIF, ICC profiles, text), which is rarely more
/// than 64 KiB, the first read; a file whose header is not found within this many bytes
/// is reported as corrupt.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// The first read of [`probe`]; it grows sixteen-fold while the header is incomplete.
const FIRST_PROBE_BYTES: u64 = 64 << 10;

/// JPEG marker bytes (ITU T.81, table B.1) the completeness check walks over.
mod marker {
    pub const SOI: u8 = 0xD8;
    pub const EOI: u8 = 0xD9;
    pub const SOS: u8 = 0xDA;
    /// Progressive frames, Huffman- and arithmetic-coded.
    pub const SOF2: u8 = 0xC2;
    pub const SOF10: u8 = 0xCA;
    pub const TEM: u8 = 0x01;
    pub const RST0: u8 = 0xD0;
    pub const RST7: u8 = 0xD7;
    /// `FF 00` inside entropy-coded data is a stuffed `FF` byte, not a marker.
    pub const STUFFED: u8 = 0x00;
}

/// Bytes spliced in before a JPEG's end-of-image marker to see whether its decoder reads
/// them (see the module's documentation): a fixed pseudo-random pattern, so that it
/// decodes to something other than the zero bits a decoder pads with, without `FF`,
/// which would start a marker.
const SPLICE: [u8; 64] = splice();

const fn splice() -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut state: u32 = 0x2545_F491;
    let mut i = 0;
    while i < out.len() {
        // xorshift32: any fixed pattern with both bit values serves.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let byte = (state >> 24) as u8;
        out[i] = if byte == 0xFF { 0x7F } else { byte };
        i += 1;
    }
    out
}

/// What a cheap look at a file's header tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The image format found from the file's content: JPEG, PNG, WebP, BMP, TIFF or GIF.
    pub format: ImageFormat,
    /// The image's width, in pixels.
    pub width: u32,
    /// The image's height, in pixels.
    pub height: u32,
}

fn unreadable(e: std::io::Error) -> ProblemKind {
    ProblemKind::Unreadable {
        detail: e.to_string(),
    }
}

fn check_file_len(len: u64) -> Result<(), ProblemKind> {
    if len == 0 {
        return Err(ProblemKind::EmptyFile);
    }
    if len > MAX_IMAGE_FILE_BYTES {
        return Err(ProblemKind::FileTooLarge {
            bytes: len,
            max_bytes: MAX_IMAGE_FILE_BYTES,
        });
    }
    Ok(())
}

/// Opens an image file after checking, from its metadata alone, that it is a regular file
/// of an acceptable length; returns it with that length.
fn open_image(path: &Path) -> Result<(File, u64), ProblemKind> {
    // Looking before opening keeps a FIFO or a device named `x.jpg` from blocking or
    // streaming forever; the opened file is checked again below.
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(ProblemKind::Unreadable {
            detail: "not a regular file".into(),
        });
    }
    check_file_len(meta.len())?;
    let file = File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(ProblemKind::Unreadable {
            detail: "not a regular file".into(),
        });
    }
    check_file_len(meta.len())?;
    Ok((file, meta.len()))
}

/// Reads only as much of the file as needed to know its format and size: 64 KiB first,
/// more only while the header is incomplete, never more than [`MAX_HEADER_BYTES`].
pub fn probe(path: &Path, max_pixels: u64) -> Result<Header, ProblemKind> {
    let (file, len) = open_image(path)?;
    let mut reader = file.take(len.min(MAX_HEADER_BYTES));
    let mut bytes = Vec::new();
    let mut want = FIRST_PROBE_BYTES;
    loop {
        let target = want.min(len).min(MAX_HEADER_BYTES);
        let missing = target.saturating_sub(bytes.len() as u64);
        (&mut reader)
            .take(missing)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        match probe_bytes(&bytes, max_pixels) {
            Ok(header) => return Ok(header),
            // Only a header cut short by the read can need more bytes; the file may also
            // have shrunk since its length was read, so stop when a read comes up short.
            Err(ProblemKind::Corrupt { .. })
                if (bytes.len() as u64) == target && target < len.min(MAX_HEADER_BYTES) =>
            {
                want = want.saturating_mul(16);
            }
            Err(problem) => return Err(problem),
        }
    }
}

/// [`probe`] on bytes in memory: the format and dimensions, with the pixel limit applied.
/// `bytes` may be only the start of a file.
pub fn probe_bytes(bytes: &[u8], max_pixels: u64) -> Result<Header, ProblemKind> {
    if bytes.is_empty() {
        return Err(ProblemKind::EmptyFile);
    }
    let format = match image::guess_format(bytes) {
        Ok(
            f @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Tiff
            | ImageFormat::Gif),
        ) => f,
        _ => return Err(ProblemKind::NotAnImage),
    };
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader.into_dimensions().map_err(|e| ProblemKind::Corrupt {
        detail: e.to_string(),
    })?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ProblemKind::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    Ok(Header {
        format,
        width,
        height,
    })
}

/// Decodes a file into 8-bit RGB, or says what is wrong with it. The file is read whole,
/// after its length was checked against [`MAX_IMAGE_FILE_BYTES`].
pub fn decode_rgb(path: &Path, max_pixels: u64) -> Result<RgbImage, ProblemKind> {
    let (file, len) = open_image(path)?;
    let mut bytes = Vec::with_capacity(len as usize);
    // One byte past the limit tells a file that grew since its length was read.
    file.take(MAX_IMAGE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    decode_rgb_bytes(&bytes, max_pixels)
}

/// [`decode_rgb`] on bytes already in memory.
pub fn decode_rgb_bytes(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ProblemKind> {
    check_file_len(bytes.len() as u64)?;
    let header = probe_bytes(bytes, max_pixels)?;
    if header.format == ImageFormat::Tiff {
        check_tiff_compression(bytes)?;
    }
    let image = decode_as(bytes, header)?;
    if header.format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes, header, &image)?;
    }
    // No copy when the image is 8-bit RGB already (most photos).
    Ok(image.into_rgb8())
}

/// TIFF compressions whose data is decoded with no bound from the TIFF's own size: JPEG
/// (6, 7) strips go to a JPEG decoder that accepts any strip up to 16384 px a side, so a
/// 1x1 TIFF could make it allocate gigabytes. Such files are refused; cameras and
/// scanners write TIFFs uncompressed, LZW, Deflate or PackBits.
const UNBOUNDED_TIFF_COMPRESSIONS: [u16; 2] = [6, 7];

/// Refuses a TIFF whose first image is compressed in a way [`UNBOUNDED_TIFF_COMPRESSIONS`]
/// lists; only its first directory is read.
fn check_tiff_compression(bytes: &[u8]) -> Result<(), ProblemKind> {
    let corrupt = |e: tiff::TiffError| ProblemKind::Corrupt {
        detail: e.to_string(),
    };
    let mut decoder = tiff::decoder::Decoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    let compression: Option<u16> = decoder
        .find_tag_unsigned(tiff::tags::Tag::Compression)
        .map_err(corrupt)?;
    match compression {
        Some(c) if UNBOUNDED_TIFF_COMPRESSIONS.contains(&c) => Err(ProblemKind::Corrupt {
            detail: format!("TIFF with JPEG-compressed data (compression {c}) is not read"),
        }),
        _ => Ok(()),
    }
}

/// Decodes the image (a GIF's first frame) and turns it upright as its EXIF orientation
/// says, as a camera's viewer shows it (PIL leaves that to `ImageOps.exif_transpose`;
/// fastai and timm train on what PIL gives, so their photos may lie on their side).
fn decode_as(bytes: &[u8], header: Header) -> Result<DynamicImage, ProblemKind> {
    let corrupt = |e: image::ImageError| ProblemKind::Corrupt {
        detail: e.to_string(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    // A broken EXIF block loses only the orientation, never the image.
    let orientation = image::ImageDecoder::orientation(&mut decoder)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Fails when the JPEG `bytes`, decoded as `image`, lack data its decoder needed (see
/// the module's documentation).
fn check_jpeg_complete(
    bytes: &[u8],
    header: Header,
    image: &DynamicImage,
) -> Result<(), ProblemKind> {
    let Some(layout) = jpeg_layout(bytes) else {
        return Err(ProblemKind::Corrupt {
            detail: "JPEG data ends before its end-of-image marker".into(),
        });
    };
    // A sequential JPEG of several scans (one per component, rare) is decoded along a
    // path of the decoder that may read past the last scan's blocks, so a splice could
    // change a complete image; such files are checked for their end marker only.
    if !layout.progressive && layout.scans > 1 {
        return Ok(());
    }
    let eoi = layout.eoi;
    let mut spliced = Vec::with_capacity(bytes.len() + SPLICE.len());
    spliced.extend_from_slice(&bytes[..eoi]);
    spliced.extend_from_slice(&SPLICE);
    spliced.extend_from_slice(&bytes[eoi..]);
    match decode_as(&spliced, header) {
        Ok(again) if again.as_bytes() == image.as_bytes() => Ok(()),
        _ => Err(ProblemKind::Corrupt {
            detail: "JPEG scan data ends before the image does (truncated file)".into(),
        }),
    }
}

/// What the walk over a JPEG's segments found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegLayout {
    /// The offset of the `FF` that starts the end-of-image marker.
    eoi: usize,
    /// Start-of-scan segments before it.
    scans: usize,
    /// The frame is progressive (`SOF2`, or `SOF10` with arithmetic coding).
    progressive: bool,
}

/// Walks a JPEG's segments (by their lengths) and scans (to their first marker) up to
/// its end-of-image marker, so an `FF D9` inside metadata, a thumbnail or entropy-coded
/// data is not taken for it. `None` when the file ends first.
fn jpeg_layout(b: &[u8]) -> Option<JpegLayout> {
    if b.get(..2)? != [0xFF, marker::SOI] {
        return None;
    }
    let mut i = 2;
    let mut scans = 0;
    let mut progressive = false;
    loop {
        // Lenient decoders skip stray bytes between segments; so does this walk.
        i += b.get(i..)?.iter().position(|&x| x == 0xFF)?;
        let start = i;
        // A marker may be preceded by any number of `FF` fill bytes (T.81, B.1.1.2).
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let m = b[i];
        i += 1;
        match m {
            marker::EOI => {
                return Some(JpegLayout {
                    eoi: start,
                    scans,
                    progressive,
                });
            }
            marker::TEM | marker::RST0..=marker::RST7 | marker::STUFFED => {}
            _ => {
                let len = usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
                if len < 2 {
                    return None;
                }
                i += len;
                if m == marker::SOF2 || m == marker::SOF10 {
                    progressive = true;
                }
                if m == marker::SOS {
                    scans += 1;
                    i = skip_entropy_coded(b, i)?;
                }
            }
        }
    }
}

/// The offset of the marker that ends the entropy-coded data starting at `i` (stuffed
/// bytes and restart markers belong to the data).
fn skip_entropy_coded(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += b.get(i..)?.iter().position(|&x| x == 0xFF)?;
        let mut j = i + 1;
        while *b.get(j)? == 0xFF {
            j += 1;
        }
        match b[j] {
            marker::STUFFED | marker::RST0..=marker::RST7 => i = j + 1,
            _ => return Some(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        out
    }

    /// A JPEG whose entropy-coded data is long (noise compresses badly), so that cutting
    /// it in the middle of its scan is easy to aim at.
    fn noisy_jpeg(w: u32, h: u32) -> Vec<u8> {
        let mut state = 1u32;
        let img = RgbImage::from_fn(w, h, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, _] = state.to_be_bytes();
            image::Rgb([a, b, c])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        out
    }

    /// The offset just past the first start-of-scan segment's header.
    fn scan_start(jpeg: &[u8]) -> usize {
        let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]))
    }

    /// The first half of a JPEG's scan with an end-of-image marker glued on: what a
    /// careless repair or an interrupted copy with a "fixed" ending looks like.
    fn half_with_eoi(jpeg: &[u8]) -> Vec<u8> {
        let start = scan_start(jpeg);
        let cut = start + (jpeg.len() - 2 - start) / 2;
        let mut out = jpeg[..cut].to_vec();
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    /// A complete JPEG followed by 200 bytes of trailer, as Samsung and Google cameras
    /// append after the end-of-image marker (markers included, to mislead a scanner).
    fn with_trailer(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg.to_vec();
        out.extend_from_slice(b"SEFH");
        out.extend((0..190u32).map(|i| match i % 50 {
            10 => 0xFF,
            11 => 0xD9,
            30 => 0xFF,
            31 => 0xD8,
            _ => (i * 37 % 251) as u8,
        }));
        out.extend_from_slice(b"SEFT\0\0");
        out
    }

    #[test]
    fn decodes_a_good_jpeg() {
        let img = decode_rgb_bytes(&jpeg_bytes(20, 10), DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(img.dimensions(), (20, 10));
    }

    #[test]
    fn names_each_kind_of_bad_file() {
        assert_eq!(decode_rgb_bytes(&[], 100), Err(ProblemKind::EmptyFile));
        assert_eq!(
            decode_rgb_bytes(b"hello, I am text", 100),
            Err(ProblemKind::NotAnImage)
        );
        let jpeg = jpeg_bytes(40, 40);
        let truncated = &jpeg[..jpeg.len() / 2];
        assert!(matches!(
            decode_rgb_bytes(truncated, DEFAULT_MAX_PIXELS),
            Err(ProblemKind::Corrupt { .. })
        ));
        assert_eq!(
            decode_rgb_bytes(&jpeg, 1000),
            Err(ProblemKind::TooLarge {
                width: 40,
                height: 40,
                max_pixels: 1000
            })
        );
    }

    #[test]
    fn a_truncated_jpeg_with_an_end_marker_glued_on_is_corrupt() {
        let jpeg = noisy_jpeg(128, 96);
        let cut = half_with_eoi(&jpeg);
        // The decoder itself accepts it (it pads the missing data), so only the
        // completeness check can tell.
        assert!(decode_as(&cut, probe_bytes(&cut, DEFAULT_MAX_PIXELS).unwrap()).is_ok());
        let got = decode_rgb_bytes(&cut, DEFAULT_MAX_PIXELS);
        assert!(
            matches!(&got, Err(ProblemKind::Corrupt { detail }) if detail.contains("truncated")),
            "{got:?}"
        );
        // So is the same cut without the marker, and cuts anywhere in the scan.
        let start = scan_start(&jpeg);
        for cut in [start + 1, start + 100, jpeg.len() / 2, jpeg.len() - 40] {
            for glue in [&[][..], &[0xFF, 0xD9]] {
                let bytes = [&jpeg[..cut], glue].concat();
                assert!(
                    matches!(
                        decode_rgb_bytes(&bytes, DEFAULT_MAX_PIXELS),
                        Err(ProblemKind::Corrupt { .. })
                    ),
                    "cut at {cut} of {}, glue {glue:?}",
                    jpeg.len()
                );
            }
        }
    }

    #[test]
    fn a_complete_jpeg_with_a_long_trailer_decodes() {
        for jpeg in [noisy_jpeg(128, 96), jpeg_bytes(33, 17)] {
            let plain = decode_rgb_bytes(&jpeg, DEFAULT_MAX_PIXELS).unwrap();
            let trailed = decode_rgb_bytes(&with_trailer(&jpeg), DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(plain, trailed);
        }
    }

    /// The committed photos are progressive JPEGs (several scans, as many cameras and
    /// web encoders write), which the completeness check has to pass whole, with a
    /// trailer, and fail cut (here at a quarter, half and three quarters of their data,
    /// each with an end marker glued on).
    #[test]
    fn progressive_jpegs_are_complete_whole_and_corrupt_cut() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/imagenet-samples");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        names.sort();
        assert!(names.len() >= 10);
        for path in names {
            let jpeg = std::fs::read(&path).unwrap();
            let whole = decode_rgb_bytes(&jpeg, DEFAULT_MAX_PIXELS)
                .unwrap_or_else(|p| panic!("{}: {p}", path.display()));
            let trailed = decode_rgb_bytes(&with_trailer(&jpeg), DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(whole, trailed, "{}", path.display());
            let start = scan_start(&jpeg);
            for quarter in 1..4 {
                let mut cut = jpeg[..start + (jpeg.len() - 2 - start) * quarter / 4].to_vec();
                cut.extend_from_slice(&[0xFF, 0xD9]);
                assert!(
                    matches!(
                        decode_rgb_bytes(&cut, DEFAULT_MAX_PIXELS),
                        Err(ProblemKind::Corrupt { .. })
                    ),
                    "{} cut at {quarter}/4",
                    path.display()
                );
            }
            // The one cut that cannot be told (see the module's documentation): right
            // after the second scan, which leaves a coarse but complete image. (Right
            // after the first, zune-jpeg wants the next marker at once and fails.)
            let first_end = skip_entropy_coded(&jpeg, start).unwrap();
            let second = first_end
                + jpeg[first_end..]
                    .windows(2)
                    .position(|w| w == [0xFF, 0xDA])
                    .unwrap();
            let second_end = skip_entropy_coded(&jpeg, scan_start(&jpeg[second..]) + second);
            let mut coarse = jpeg[..second_end.unwrap()].to_vec();
            coarse.extend_from_slice(&[0xFF, 0xD9]);
            let got = decode_rgb_bytes(&coarse, DEFAULT_MAX_PIXELS);
            assert!(got.is_ok(), "{}: {got:?}", path.display());
        }
    }

    #[test]
    fn the_segment_walk_finds_the_real_end_marker() {
        let jpeg = noisy_jpeg(40, 24);
        let eoi = jpeg.len() - 2;
        let plain = jpeg_layout(&jpeg).unwrap();
        assert_eq!((plain.eoi, plain.scans, plain.progressive), (eoi, 1, false));
        // An end marker inside a comment segment, and after the real one in a trailer,
        // are not taken for it.
        let mut commented = jpeg[..2].to_vec();
        commented.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9]);
        commented.extend_from_slice(&jpeg[2..]);
        assert_eq!(jpeg_layout(&commented).unwrap().eoi, eoi + 8);
        assert_eq!(jpeg_layout(&with_trailer(&jpeg)).unwrap().eoi, eoi);
        // A file that ends inside a segment or a scan has none.
        assert_eq!(jpeg_layout(&jpeg[..eoi]), None);
        assert_eq!(jpeg_layout(&jpeg[..20]), None);
        let photo = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/imagenet-samples/imagenet_14_129.jpg"),
        )
        .unwrap();
        let progressive = jpeg_layout(&photo).unwrap();
        assert!(progressive.progressive && progressive.scans > 2);
    }

    #[test]
    fn a_truncated_png_is_corrupt() {
        let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * y) as u8, x as u8, y as u8]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert!(decode_rgb_bytes(&png, DEFAULT_MAX_PIXELS).is_ok());
        assert!(matches!(
            decode_rgb_bytes(&png[..png.len() * 2 / 3], DEFAULT_MAX_PIXELS),
            Err(ProblemKind::Corrupt { .. })
        ));
    }

    #[test]
    fn a_huge_file_is_reported_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        let file = File::create(&path).unwrap();
        // Sparse: 8 GiB long, no block written, so nothing is stored and any attempt to
        // read it whole would take minutes and eight gigabytes.
        file.set_len(8 << 30).unwrap();
        drop(file);
        let started = std::time::Instant::now();
        let too_large = ProblemKind::FileTooLarge {
            bytes: 8 << 30,
            max_bytes: MAX_IMAGE_FILE_BYTES,
        };
        assert_eq!(probe(&path, DEFAULT_MAX_PIXELS), Err(too_large.clone()));
        assert_eq!(decode_rgb(&path, DEFAULT_MAX_PIXELS), Err(too_large));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn probe_reads_past_long_metadata_but_not_the_whole_file() {
        let jpeg = noisy_jpeg(64, 48);
        // 300 KB of comment segments between the start marker and the frame header,
        // more than the first read of 64 KiB.
        let mut long = jpeg[..2].to_vec();
        for _ in 0..5 {
            long.extend_from_slice(&[0xFF, 0xFE, 0xFF, 0xFF]);
            long.extend(std::iter::repeat_n(b'x', 0xFFFD));
        }
        long.extend_from_slice(&jpeg[2..]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jpg");
        std::fs::write(&path, &long).unwrap();
        let header = probe(&path, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((header.width, header.height), (64, 48));
        assert_eq!(
            decode_rgb(&path, DEFAULT_MAX_PIXELS).unwrap().dimensions(),
            (64, 48)
        );
        // A header that never comes is corrupt after at most MAX_HEADER_BYTES.
        let path = dir.path().join("endless.jpg");
        let mut endless = jpeg[..2].to_vec();
        while endless.len() < 20 << 20 {
            endless.extend_from_slice(&[0xFF, 0xFE, 0xFF, 0xFF]);
            endless.extend(std::iter::repeat_n(b'x', 0xFFFD));
        }
        std::fs::write(&path, &endless).unwrap();
        assert!(matches!(
            probe(&path, DEFAULT_MAX_PIXELS),
            Err(ProblemKind::Corrupt { .. })
        ));
    }

    #[test]
    fn a_fifo_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe.jpg");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        assert!(matches!(
            decode_rgb(&path, DEFAULT_MAX_PIXELS),
            Err(ProblemKind::Unreadable { .. })
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(7),
            ..Default::default()
        })]

        /// Damaged files are problems, never panics: random bytes after a JPEG start, and
        /// a real JPEG with bytes overwritten.
        #[test]
        fn damaged_jpegs_never_panic(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            at in 0usize..2000,
            patch in proptest::collection::vec(proptest::num::u8::ANY, 1..8),
        ) {
            let _ = decode_rgb_bytes(&[&[0xFF, 0xD8, 0xFF][..], &tail].concat(), 1 << 16);
            let mut jpeg = jpeg_bytes(24, 24);
            let at = at % jpeg.len();
            for (i, b) in patch.iter().enumerate() {
                if let Some(x) = jpeg.get_mut(at + i) {
                    *x = *b;
                }
            }
            let _ = decode_rgb_bytes(&jpeg, 1 << 16);
            let _ = jpeg_layout(&jpeg);
        }
    }

    #[test]
    fn converts_grayscale_alpha_and_16_bit_to_rgb() {
        let mut png = Vec::new();
        let gray = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(3, 2, |x, _| {
            image::Luma([x as u16 * 30000])
        });
        gray.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let rgb = decode_rgb_bytes(&png, 100).unwrap();
        // 30000 / 65535 * 255 = 116.7, rounded to 117, replicated into all three channels.
        assert_eq!(rgb.get_pixel(1, 0).0, [117, 117, 117]);

        let mut png = Vec::new();
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([10, 20, 30, 0]));
        rgba.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(
            decode_rgb_bytes(&png, 100).unwrap().get_pixel(0, 0).0,
            [10, 20, 30]
        );
    }

    /// A 4x3 image of a few flat colours, so lossy palettes keep them.
    fn colours() -> RgbImage {
        RgbImage::from_fn(4, 3, |x, y| match (x / 2, y) {
            (0, 0) => image::Rgb([255, 0, 0]),
            (1, 0) => image::Rgb([0, 0, 255]),
            (0, _) => image::Rgb([0, 255, 0]),
            _ => image::Rgb([255, 255, 255]),
        })
    }

    #[test]
    fn reads_webp_bmp_tiff_and_gif() {
        for format in [
            ImageFormat::WebP,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
            ImageFormat::Gif,
        ] {
            let mut bytes = Vec::new();
            colours()
                .write_to(&mut Cursor::new(&mut bytes), format)
                .unwrap();
            let header = probe_bytes(&bytes, 100).unwrap();
            assert_eq!((header.format, header.width, header.height), (format, 4, 3));
            let rgb = decode_rgb_bytes(&bytes, 100).unwrap();
            let close = rgb
                .pixels()
                .zip(colours().pixels())
                .all(|(a, b)| a.0.iter().zip(b.0).all(|(&a, b)| a.abs_diff(b) <= 8));
            assert!(close, "{format:?}: {:?}", rgb.as_raw());
            // Cut in half, each is a problem, never a panic.
            assert!(decode_rgb_bytes(&bytes[..bytes.len() / 2], 100).is_err());
        }
    }

    /// A big-endian TIFF block holding one tag: orientation (0x0112) = `value`.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut exif = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
        exif.extend_from_slice(&value.to_be_bytes());
        exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        exif
    }

    #[test]
    fn exif_orientation_turns_the_image_upright() {
        use image::ImageEncoder;
        let upright = colours();
        let encode = |exif: Vec<u8>| {
            let mut png = Vec::new();
            let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
            encoder.set_exif_metadata(exif).unwrap();
            encoder
                .write_image(upright.as_raw(), 4, 3, image::ExtendedColorType::Rgb8)
                .unwrap();
            png
        };
        // Orientation 6: the camera was turned, the viewer turns the picture 90° clockwise.
        let turned = decode_rgb_bytes(&encode(exif_orientation(6)), 100).unwrap();
        assert_eq!(turned, image::imageops::rotate90(&upright));
        assert_eq!(turned.dimensions(), (3, 4));
        // Orientation 1 and a broken block change nothing.
        assert_eq!(
            decode_rgb_bytes(&encode(exif_orientation(1)), 100).unwrap(),
            upright
        );
        assert_eq!(
            decode_rgb_bytes(&encode(b"MM\0\x2a\xff".to_vec()), 100).unwrap(),
            upright
        );
    }

    #[test]
    fn a_tiff_of_jpeg_strips_is_refused_unread() {
        let mut tiff = Vec::new();
        colours()
            .write_to(&mut Cursor::new(&mut tiff), ImageFormat::Tiff)
            .unwrap();
        assert!(decode_rgb_bytes(&tiff, 100).is_ok());
        // The little-endian IFD entry of tag 259 (Compression), type SHORT, count 1:
        // its value becomes 7 (JPEG), whose strips no size limit reaches.
        let entry = [0x03, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00];
        let at = tiff.windows(8).position(|w| w == entry).unwrap() + 8;
        tiff[at..at + 2].copy_from_slice(&7u16.to_le_bytes());
        match decode_rgb_bytes(&tiff, 100) {
            Err(ProblemKind::Corrupt { detail }) => assert!(detail.contains("JPEG"), "{detail}"),
            other => panic!("{other:?}"),
        }
    }
}
