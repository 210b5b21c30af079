//! Property tests of the augmentations (fixed seed and case count, so CI is deterministic).

use super::*;
use proptest::prelude::{Strategy, any};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest::{prop_assert, prop_assert_eq};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

fn image(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    RgbImage::from_fn(w, h, |_, _| {
        image::Rgb([rng.random(), rng.random(), rng.random()])
    })
}

fn to_chw(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(px.0[c]) / 255.0;
        }
    }
    out
}

fn config_strategy() -> impl Strategy<Value = AugmentConfig> {
    (
        0.0f32..=1.0,
        0.0f32..45.0,
        1.0f32..1.5,
        0.0f32..0.4,
        0.0f32..=1.0,
        0.0f32..0.5,
        0.0f32..=1.0,
        0.08f32..=1.0,
    )
        .prop_map(
            |(
                flip_p,
                max_rotate,
                max_zoom,
                max_warp,
                p_affine,
                max_lighting,
                p_lighting,
                min_scale,
            )| {
                AugmentConfig {
                    flip_p,
                    max_rotate,
                    min_zoom: 1.0,
                    max_zoom,
                    max_warp,
                    p_affine,
                    max_lighting,
                    p_lighting,
                    min_scale,
                    ratio: (3.0 / 4.0, 4.0 / 3.0),
                }
            },
        )
}

#[test]
fn default_is_fastai_aug_transforms() {
    let c = AugmentConfig::default();
    assert_eq!(
        (c.flip_p, c.max_rotate, c.min_zoom, c.max_zoom),
        (0.5, 10.0, 1.0, 1.1)
    );
    assert_eq!(
        (c.max_warp, c.p_affine, c.max_lighting, c.p_lighting),
        (0.2, 0.75, 0.2, 0.75)
    );
    assert!(c.validate().is_ok());
    assert!(
        AugmentConfig { p_affine: 1.5, ..c }
            .validate()
            .unwrap_err()
            .contains("p_affine")
    );
}

#[test]
fn flip_twice_is_identity() {
    runner()
        .run(&(1u32..40, 1u32..40, any::<u64>()), |(w, h, seed)| {
            let img = image(w, h, seed);
            prop_assert_eq!(hflip(&hflip(&img)), img.clone());
            let mut chw = to_chw(&img);
            let before = chw.clone();
            hflip_chw(&mut chw, w as usize);
            hflip_chw(&mut chw, w as usize);
            prop_assert_eq!(chw, before);
            Ok(())
        })
        .unwrap();
}

#[test]
fn outputs_have_requested_size_and_finite_values_in_range() {
    runner()
        .run(
            &(
                config_strategy(),
                1u32..80,
                1u32..80,
                1u32..48,
                any::<u64>(),
            ),
            |(cfg, w, h, size, seed)| {
                let img = image(w, h, seed);
                let mut out = vec![f32::NAN; (3 * size * size) as usize];
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                augment(&img, size, &cfg, &mut rng, &mut out);
                prop_assert!(out.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn crops_and_coordinate_maps_stay_in_bounds() {
    runner()
        .run(
            &(
                config_strategy(),
                1u32..200,
                1u32..200,
                2usize..40,
                any::<u64>(),
            ),
            |(cfg, w, h, n, seed)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let p = draw_params(&cfg, w, h, &mut rng);
                prop_assert!(p.crop.is_within(w, h), "crop {:?} outside {w}x{h}", p.crop);
                let map = CoordMap::new(&p, p.crop);
                let (x_hi, y_hi) = (p.crop.x + p.crop.w - 1.0, p.crop.y + p.crop.h - 1.0);
                for oy in 0..n {
                    for ox in 0..n {
                        let (sx, sy) = map.source(ox, oy, n);
                        prop_assert!(
                            sx >= p.crop.x - 1e-3 && sx <= x_hi + 1e-3,
                            "x {sx} outside crop {:?}",
                            p.crop
                        );
                        prop_assert!(
                            sy >= p.crop.y - 1e-3 && sy <= y_hi + 1e-3,
                            "y {sy} outside crop {:?}",
                            p.crop
                        );
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn same_seed_same_output() {
    runner()
        .run(&(config_strategy(), any::<u64>()), |(cfg, seed)| {
            let img = image(37, 23, seed);
            let run = |s: u64| {
                let mut out = vec![0.0; 3 * 16 * 16];
                augment(&img, 16, &cfg, &mut ChaCha8Rng::seed_from_u64(s), &mut out);
                out
            };
            prop_assert_eq!(run(seed), run(seed));
            Ok(())
        })
        .unwrap();
}

#[test]
fn identity_at_the_same_size_returns_the_pixels() {
    let img = image(24, 24, 3);
    let mut out = vec![0.0; 3 * 24 * 24];
    resize_plain(&img, 24, (0.75, 4.0 / 3.0), &mut out);
    let want = to_chw(&img);
    for (a, b) in out.iter().zip(&want) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn flip_only_is_the_mirror_of_the_plain_resize() {
    let img = image(30, 20, 5);
    let cfg = AugmentConfig {
        flip_p: 1.0,
        ..AugmentConfig::none()
    };
    let mut flipped = vec![0.0; 3 * 12 * 12];
    augment(
        &img,
        12,
        &cfg,
        &mut ChaCha8Rng::seed_from_u64(1),
        &mut flipped,
    );
    let mut plain = vec![0.0; 3 * 12 * 12];
    resize_plain(&img, 12, cfg.ratio, &mut plain);
    hflip_chw(&mut plain, 12);
    for (a, b) in flipped.iter().zip(&plain) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn warp_moves_the_corners_where_fastai_puts_them() {
    let (xm, ym) = (0.1f32, -0.15f32);
    let m = warp_matrix((xm, ym)).unwrap();
    let apply = |x: f32, y: f32| {
        let d = m[2][0] * x + m[2][1] * y + m[2][2];
        (
            (m[0][0] * x + m[0][1] * y + m[0][2]) / d,
            (m[1][0] * x + m[1][1] * y + m[1][2]) / d,
        )
    };
    let (u, v) = apply(-1.0, 1.0);
    assert!((u - -(1.0 - ym)).abs() < 1e-5 && (v - (1.0 + xm)).abs() < 1e-5);
    let (u, v) = apply(1.0, 1.0);
    assert!((u - (1.0 + ym)).abs() < 1e-5 && (v - (1.0 - xm)).abs() < 1e-5);
    assert!(warp_matrix((0.0, 0.0)).is_none());
}

#[test]
fn neutral_lighting_changes_nothing_and_brightness_moves_the_mean() {
    let img = image(16, 16, 9);
    let mut base = vec![0.0; 3 * 16 * 16];
    let mut p = AugmentParams::identity(16, 16, (0.75, 4.0 / 3.0));
    apply(&img, &p, 16, &mut base);
    p.brightness = Some(0.5);
    p.contrast = Some(1.0);
    let mut neutral = vec![0.0; base.len()];
    apply(&img, &p, 16, &mut neutral);
    assert!(base.iter().zip(&neutral).all(|(a, b)| (a - b).abs() < 1e-4));
    p.brightness = Some(0.6);
    let mut bright = vec![0.0; base.len()];
    apply(&img, &p, 16, &mut bright);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&bright) > mean(&base) + 0.02);
}

#[test]
fn reflection_folds_into_range() {
    assert_eq!(reflect(1.5), 0.5);
    assert_eq!(reflect(-1.25), -0.75);
    assert_eq!(reflect(3.5), -0.5);
    assert_eq!(reflect(f32::NAN), 0.0);
}
