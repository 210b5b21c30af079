//! Resampling RGB images with `fast_image_resize` (SIMD convolutions chosen at run time:
//! AVX2, SSE4.1 or NEON, else plain code), which `cargo xtask bench data` measures
//! beside `image`'s `resize`: faster on 12-megapixel photos and on the small images a
//! batch shrinks. Used where the loader shrinks images: once per photo when it is cached
//! ([`crate::bound_side`]) and, for stages far smaller than the cached image, every
//! epoch ([`crate::apply`]).

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// The resampling filters vista uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Bilinear (a tent of the scale's width): cheap, for the per-epoch shrink.
    Triangle,
    /// Lanczos with three lobes: sharp, for the one-time shrink of a photo.
    Lanczos3,
}

/// `src` resampled to `width` x `height` (both at least 1) with `filter`.
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    let (width, height) = (width.max(1), height.max(1));
    let mut dst = RgbImage::new(width, height);
    if src.width() == 0 || src.height() == 0 {
        return dst;
    }
    let filter = match filter {
        Filter::Triangle => FilterType::Bilinear,
        Filter::Lanczos3 => FilterType::Lanczos3,
    };
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    // Both images are 8-bit RGB with matching buffers, which is all `resize` checks.
    Resizer::new()
        .resize(src, &mut dst, &options)
        .expect("source and destination are both U8x3 images");
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_matches_image_within_a_few_levels() {
        let src = RgbImage::from_fn(300, 200, |x, y| {
            image::Rgb([(x % 256) as u8, (y * 3 % 256) as u8, ((x + y) % 256) as u8])
        });
        for (filter, theirs) in [
            (Filter::Lanczos3, image::imageops::FilterType::Lanczos3),
            (Filter::Triangle, image::imageops::FilterType::Triangle),
        ] {
            let ours = resize_rgb(&src, 75, 50, filter);
            let reference = image::imageops::resize(&src, 75, 50, theirs);
            assert_eq!(ours.dimensions(), (75, 50));
            let mean_diff = (ours.as_raw().iter())
                .zip(reference.as_raw())
                .map(|(a, b)| f64::from(a.abs_diff(*b)))
                .sum::<f64>()
                / ours.as_raw().len() as f64;
            assert!(mean_diff < 3.0, "{filter:?}: mean difference {mean_diff}");
        }
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        let src = RgbImage::new(1, 1);
        assert_eq!(
            resize_rgb(&src, 0, 5, Filter::Lanczos3).dimensions(),
            (1, 5)
        );
        let empty = RgbImage::new(0, 0);
        assert_eq!(
            resize_rgb(&empty, 3, 3, Filter::Triangle).dimensions(),
            (3, 3)
        );
    }
}
