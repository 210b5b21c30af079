//! Test-time augmentation: the views, their combination, and predictions of a real
//! (tiny, untrained) model.

use burn::backend::Flex;
use image::{Rgb, RgbImage};
use vista_data::{AugmentConfig, OnBadImage, hflip_chw};
use vista_eval::{
    PredictOptions, Tta, combine, predict_files, predict_images, ten_crop_rects, write_views,
};
use vista_models::{AnyModel, Arch, ModelConfig};

type B = Flex;

fn model() -> AnyModel<B> {
    ModelConfig {
        arch: Arch::Resnet18,
        num_classes: 4,
        width: 0.125,
        small_stem: true,
        fastai_head: false,
    }
    .init::<B>(&Default::default())
    .unwrap()
}

/// An asymmetric test picture: a gradient plus a bright block on the left.
fn picture(seed: u8) -> RgbImage {
    RgbImage::from_fn(20, 16, |x, y| {
        let v = (x * 9 + y * 5 + u32::from(seed) * 31) as u8;
        if x < 6 {
            Rgb([255, v, 40])
        } else {
            Rgb([v, 90, 255 - v])
        }
    })
}

fn opts(tta: Tta) -> PredictOptions {
    PredictOptions {
        size: 16,
        tta,
        batch: 64,
        ..PredictOptions::default()
    }
}

const RATIO: (f32, f32) = (0.5, 2.0);

/// Equal up to float rounding: sampling mirrored coordinates rounds differently.
fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "largest difference {worst}");
}

#[test]
fn the_flip_view_is_the_mirror_of_the_plain_view() {
    let mut out = vec![0.0; 2 * 3 * 16 * 16];
    write_views(
        &picture(0),
        16,
        &Tta::Flip,
        &AugmentConfig::none(),
        RATIO,
        0,
        0,
        &mut out,
    );
    let (plain, flipped) = out.split_at_mut(3 * 16 * 16);
    assert_ne!(plain, flipped);
    hflip_chw(flipped, 16);
    assert_close(plain, flipped);
}

#[test]
fn ten_crops_are_four_corners_and_the_centre_inside_the_image() {
    let rects = ten_crop_rects(100, 80, (0.5, 2.0), 0.875);
    for r in &rects {
        assert!(r.is_within(100, 80), "{r:?}");
        assert!((r.w - 87.5).abs() < 1e-4 && (r.h - 70.0).abs() < 1e-4);
    }
    assert_eq!((rects[0].x, rects[0].y), (0.0, 0.0));
    assert!((rects[3].x - 12.5).abs() < 1e-4 && (rects[3].y - 10.0).abs() < 1e-4);
    assert!((rects[4].x - 6.25).abs() < 1e-4 && (rects[4].y - 5.0).abs() < 1e-4);
    let mut out = vec![0.0; 10 * 3 * 8 * 8];
    write_views(
        &picture(1),
        8,
        &Tta::TenCrop { scale: 0.875 },
        &AugmentConfig::none(),
        RATIO,
        0,
        0,
        &mut out,
    );
    let views: Vec<&[f32]> = out.chunks_exact(3 * 64).collect();
    for pair in views.chunks_exact(2) {
        let mut m = pair[1].to_vec();
        hflip_chw(&mut m, 8);
        // Each crop is followed by its mirror image.
        assert_close(pair[0], &m);
    }
}

#[test]
fn fastai_tta_blends_the_augmented_mean_with_the_plain_prediction() {
    // Plain [1, 0]; augmented [0, 1] and [0.5, 0.5]: mean [0.25, 0.75], max [0.5, 1].
    let views = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5];
    let fa = |use_max| Tta::Fastai {
        n: 2,
        beta: 0.25,
        use_max,
    };
    let mean = combine(&fa(false), &views, 2);
    assert!((mean[0] - (0.25 + 0.25 * 0.75)).abs() < 1e-6, "{mean:?}");
    let max = combine(&fa(true), &views, 2);
    assert!(
        (max[0] - (0.5 + 0.25 * 0.5)).abs() < 1e-6 && (max[1] - 0.75).abs() < 1e-6,
        "{max:?}"
    );
    assert_eq!(combine(&Tta::None, &views[..2], 2), vec![1.0, 0.0]);
}

#[test]
fn flip_tta_is_the_mean_of_the_image_and_its_mirror() {
    let m = model();
    let dev = [Default::default()];
    let img = picture(2);
    let mirrored = image::imageops::flip_horizontal(&img);
    let plain = predict_images::<B, _>(
        &m,
        &dev,
        &[img.clone(), mirrored],
        &[0, 1],
        4,
        &opts(Tta::None),
    );
    let flip = predict_images::<B, _>(&m, &dev, &[img], &[0], 4, &opts(Tta::Flip));
    for c in 0..4 {
        assert!(
            (flip[c] - (plain[c] + plain[4 + c]) / 2.0).abs() < 1e-5,
            "{flip:?} {plain:?}"
        );
    }
    assert!((flip.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn augmented_views_depend_on_the_seed_not_on_the_batching() {
    let m = model();
    let dev = [Default::default()];
    let images: Vec<RgbImage> = (0..5).map(picture).collect();
    let idx: Vec<u64> = (0..5).collect();
    let mut o = opts(Tta::FASTAI);
    let a = predict_images::<B, _>(&m, &dev, &images, &idx, 4, &o);
    o.batch = 5; // one image per pass
    let b = predict_images::<B, _>(&m, &dev, &images, &idx, 4, &o);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-5);
    }
    o.seed = 43;
    let c = predict_images::<B, _>(&m, &dev, &images, &idx, 4, &o);
    assert!(a.iter().zip(&c).any(|(x, y)| (x - y).abs() > 1e-6));
}

#[test]
fn a_corrupt_file_fails_by_name_or_is_skipped_without_changing_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..3u8 {
        let f = dir.path().join(format!("{i}.png"));
        picture(i).save(&f).unwrap();
        files.push(f);
    }
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    files.insert(1, bad);
    let m = model();
    let dev = [Default::default()];
    let mut o = opts(Tta::FASTAI);
    let err = predict_files::<B, _>(&m, &dev, &files, 4, &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.png"), "{err}");
    o.on_bad_image = OnBadImage::Skip;
    let got = predict_files::<B, _>(&m, &dev, &files, 4, &o).unwrap();
    assert_eq!(got.kept, vec![0, 2, 3]);
    assert_eq!(got.skipped.len(), 1);
    assert!(got.skipped[0].path.ends_with("bad.png"));
    let images: Vec<RgbImage> = (0..3).map(picture).collect();
    let direct = predict_images::<B, _>(&m, &dev, &images, &[0, 2, 3], 4, &o);
    for (x, y) in got.probs.iter().zip(&direct) {
        assert!((x - y).abs() < 1e-5);
    }
}

#[test]
fn five_crops_are_the_unmirrored_half_of_ten_crops() {
    let (five, ten) = (
        Tta::FiveCrop { scale: 0.875 },
        Tta::TenCrop { scale: 0.875 },
    );
    let mut a = vec![0.0; 5 * 3 * 64];
    let mut b = vec![0.0; 10 * 3 * 64];
    write_views(
        &picture(3),
        8,
        &five,
        &AugmentConfig::none(),
        RATIO,
        0,
        0,
        &mut a,
    );
    write_views(
        &picture(3),
        8,
        &ten,
        &AugmentConfig::none(),
        RATIO,
        0,
        0,
        &mut b,
    );
    for (i, view) in a.chunks_exact(3 * 64).enumerate() {
        assert_eq!(view, &b[2 * i * 3 * 64..(2 * i + 1) * 3 * 64]);
    }
    assert_eq!(Tta::parse("five-crop").unwrap(), five);
}
