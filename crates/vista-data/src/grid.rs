//! Contact sheets: many small images in one PNG, for looking at augmentations and data.

use image::{Rgb, RgbImage};

/// Lays out CHW images with values in [0, 1] (each `3 * size * size` long) in a grid of
/// `cols` columns, each scaled up by the whole factor `zoom`, with 2-pixel white gaps.
pub fn grid(images: &[Vec<f32>], size: u32, cols: u32, zoom: u32) -> RgbImage {
    let cols = cols.max(1);
    let zoom = zoom.max(1);
    let rows = (images.len() as u32).div_ceil(cols).max(1);
    let cell = size * zoom;
    let gap = 2;
    let mut out = RgbImage::from_pixel(
        cols * (cell + gap) + gap,
        rows * (cell + gap) + gap,
        Rgb([255, 255, 255]),
    );
    let plane = (size * size) as usize;
    for (k, img) in images.iter().enumerate() {
        let (gx, gy) = (k as u32 % cols, k as u32 / cols);
        let (x0, y0) = (gap + gx * (cell + gap), gap + gy * (cell + gap));
        for y in 0..cell {
            for x in 0..cell {
                let i = ((y / zoom) * size + x / zoom) as usize;
                let px = |c: usize| (img[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
                out.put_pixel(x0 + x, y0 + y, Rgb([px(0), px(1), px(2)]));
            }
        }
    }
    out
}
