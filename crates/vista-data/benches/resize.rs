//! Resampling speed: `image`'s `resize` beside `fast_image_resize` (vista's
//! `resize_rgb`), where the loader resizes:
//! - once per photo, when a 12-megapixel (4000x3000) photo is cached at a 258 px shorter
//!   side (Lanczos3; `image` after its `thumbnail` box filter, as vista did before, and
//!   `fast_image_resize` straight from the photo);
//! - every epoch, when a 150 px Intel photo is shrunk to twice a 16 px stage (bilinear).
//!
//! Run: `cargo bench -p vista-data --bench resize` (or `cargo xtask bench data`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use image::RgbImage;
use image::imageops::{self, FilterType};
use vista_data::{Filter, resize_rgb};

/// A photo-like picture: gradients and a little grain.
fn picture(w: u32, h: u32) -> RgbImage {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state >> 59) as u8;
        image::Rgb([
            (x * 255 / w) as u8 / 2 + n,
            (y * 255 / h) as u8 / 2 + n,
            ((x + y) % 200) as u8 / 2 + n,
        ])
    })
}

fn photo_to_cache(c: &mut Criterion) {
    let photo = picture(4000, 3000);
    let (w, h) = (344, 258);
    let mut group = c.benchmark_group("12mp_to_258px");
    group.sample_size(10);
    group.bench_function("image_thumbnail_lanczos3", |b| {
        b.iter(|| {
            let small = imageops::thumbnail(black_box(&photo), 2 * w, 2 * h);
            imageops::resize(&small, w, h, FilterType::Lanczos3)
        })
    });
    group.bench_function("image_lanczos3", |b| {
        b.iter(|| imageops::resize(black_box(&photo), w, h, FilterType::Lanczos3))
    });
    group.bench_function("fast_image_resize_lanczos3", |b| {
        b.iter(|| resize_rgb(black_box(&photo), w, h, Filter::Lanczos3))
    });
    group.finish();
}

fn small_per_epoch(c: &mut Criterion) {
    let photo = picture(150, 150);
    let mut group = c.benchmark_group("150px_to_32px");
    group.bench_function("image_triangle", |b| {
        b.iter(|| imageops::resize(black_box(&photo), 32, 32, FilterType::Triangle))
    });
    group.bench_function("fast_image_resize_bilinear", |b| {
        b.iter(|| resize_rgb(black_box(&photo), 32, 32, Filter::Triangle))
    });
    group.finish();
}

criterion_group!(benches, photo_to_cache, small_per_epoch);
criterion_main!(benches);
