//! Loader throughput: decode + augment + batch, images per second at 64, 128 and 150 px.
//!
//! Run: `cargo bench -p vista-data --bench loader` (or `cargo xtask bench data`).
//! Inputs are 150x150 JPEGs like the Intel scene photos, encoded once in memory.
//! Compare the single-thread figures with the target of 500 images/s per core at 64 px
//! (the rate a training step must never wait on), and `cached` with `decode` to see what
//! the decoded-image cache saves on every epoch after the first (`cached` also mixes the
//! batch with mixup α = 0.4, which copies it once).

use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use image::{ImageFormat, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vista_data::{AugmentConfig, Loader, LoaderConfig, Normalize, augment, decode_rgb_bytes};

const BATCH: usize = 32;

/// Photo-like 150x150 JPEGs: smooth gradients plus noise, so the encoder does real work.
fn jpegs(n: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    (0..n)
        .map(|i| {
            let img = RgbImage::from_fn(150, 150, |x, y| {
                let n: u8 = rng.random_range(0..40);
                image::Rgb([
                    (x + i as u32) as u8 / 2 + n,
                    (y * 3 / 2) as u8 + n,
                    ((x + y) / 3) as u8 + n,
                ])
            });
            let mut out = Vec::new();
            img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
                .unwrap();
            out
        })
        .collect()
}

fn decode_augment_batch(c: &mut Criterion) {
    let files = jpegs(BATCH);
    let cfg = AugmentConfig::default();
    let mut group = c.benchmark_group("decode_augment_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    for size in [64u32, 128, 150] {
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let len = 3 * (size * size) as usize;
            let mut batch = vec![0.0f32; BATCH * len];
            b.iter(|| {
                for (bytes, out) in files.iter().zip(batch.chunks_exact_mut(len)) {
                    let img = decode_rgb_bytes(bytes, u64::MAX).unwrap();
                    augment(&img, size, &cfg, &mut rng, out);
                }
                Normalize::IMAGENET.apply(&mut batch, size as usize);
                black_box(&batch);
            });
        });
    }
    group.finish();
}

fn cached_augment_batch(c: &mut Criterion) {
    let images: Vec<RgbImage> = jpegs(BATCH)
        .iter()
        .map(|b| decode_rgb_bytes(b, u64::MAX).unwrap())
        .collect();
    let labels = vec![0u32; BATCH];
    let cfg = LoaderConfig {
        batch_size: BATCH,
        augment: Some(AugmentConfig::default()),
        mixup_alpha: Some(0.4),
        ..LoaderConfig::default()
    };
    let loader = Loader::new(images, Arc::new(labels), (0..BATCH).collect(), cfg);
    let mut group = c.benchmark_group("cached_augment_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    for size in [64u32, 128, 150] {
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            let mut epoch = 0;
            b.iter(|| {
                epoch += 1;
                black_box(loader.batch(epoch, 0, size))
            });
        });
    }
    group.finish();
}

fn loader_all_cores(c: &mut Criterion) {
    let n = 8 * BATCH;
    let images: Vec<RgbImage> = jpegs(n)
        .iter()
        .map(|b| decode_rgb_bytes(b, u64::MAX).unwrap())
        .collect();
    let cfg = LoaderConfig {
        batch_size: BATCH,
        shuffle: true,
        augment: Some(AugmentConfig::default()),
        ..LoaderConfig::default()
    };
    let loader = Loader::new(images, Arc::new(vec![0; n]), (0..n).collect(), cfg);
    let mut group = c.benchmark_group("loader_epoch_all_cores");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("64", |b| {
        let mut epoch = 0;
        b.iter(|| {
            epoch += 1;
            loader
                .epoch(epoch, 64)
                .map(|b| black_box(b).len())
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = decode_augment_batch, cached_augment_batch, loader_all_cores
}
criterion_main!(benches);
