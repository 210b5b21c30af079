//! Decoding image files into RGB, with the checks that turn bad files into named problems.
//!
//! Colour handling, the same for every input (as PIL's `convert("RGB")` except for 16-bit
//! input, so models trained in PyTorch see the same pixels):
//! - grayscale is replicated into three channels;
//! - an alpha channel is dropped (not composited);
//! - 16-bit samples are scaled to 8 bits (`v * 255 / 65535`, rounded; PIL clips instead);
//! - CMYK JPEGs (including Adobe's inverted CMYK) are converted to RGB by the JPEG decoder.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, RgbImage};

use crate::problem::ProblemKind;

/// Default decompression-bomb guard: 64 megapixels, far above any photo a classifier needs.
pub const DEFAULT_MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// What a cheap look at a file's header tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Reads only as much of the file as needed to know its format and size.
pub fn probe(path: &Path, max_pixels: u64) -> Result<Header, ProblemKind> {
    let bytes = std::fs::read(path).map_err(|e| ProblemKind::Unreadable {
        detail: e.to_string(),
    })?;
    probe_bytes(&bytes, max_pixels)
}

fn probe_bytes(bytes: &[u8], max_pixels: u64) -> Result<Header, ProblemKind> {
    if bytes.is_empty() {
        return Err(ProblemKind::EmptyFile);
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
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

/// Decodes a file into 8-bit RGB, or says what is wrong with it.
pub fn decode_rgb(path: &Path, max_pixels: u64) -> Result<RgbImage, ProblemKind> {
    let bytes = std::fs::read(path).map_err(|e| ProblemKind::Unreadable {
        detail: e.to_string(),
    })?;
    decode_rgb_bytes(&bytes, max_pixels)
}

/// [`decode_rgb`] on bytes already in memory.
pub fn decode_rgb_bytes(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ProblemKind> {
    let header = probe_bytes(bytes, max_pixels)?;
    if header.format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills a truncated scan with grey and reports success; such an
        // image would train the model on garbage, so it is reported like any corrupt file.
        return Err(ProblemKind::Corrupt {
            detail: "JPEG data ends before its end-of-image marker".into(),
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| ProblemKind::Corrupt {
        detail: e.to_string(),
    })?;
    Ok(image.to_rgb8())
}

/// A complete JPEG ends with the EOI marker `FF D9`; some writers pad a few bytes after it.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
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
}
