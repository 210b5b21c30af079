//! Test-time augmentation: predict several views of each image and combine them.
//!
//! - [`Tta::Fastai`] is fastai's `Learner.tta(n=4, beta=0.25)`: `n` passes with the
//!   training augmentations, averaged (or their maximum with `use_max`), then
//!   `lerp(augmented, plain, beta)` with the plain prediction.
//! - [`Tta::Flip`] averages the image and its mirror image.
//! - [`Tta::TenCrop`] is the 10-crop test of the ResNet paper (He et al. 2015, after
//!   Krizhevsky et al. 2012): the four corner crops and the centre crop, each also
//!   mirrored, averaged. [`Tta::FiveCrop`] leaves out the mirror images, for data that
//!   is not mirror-symmetric (Fashion-MNIST's shoes all face one way) and models trained
//!   without flips.
//!
//! Every augmented view is drawn from `(seed, image index, view)`, so a prediction does
//! not depend on batch size or thread count.

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::backend::Backend;
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use vista_data::{
    AugmentConfig, AugmentParams, CropRect, ImageSource, Normalize, OnBadImage, Problem, apply,
    centre_crop, decode_rgb, draw_params,
};
use vista_format::Stream;
use vista_models::{Classifier, infer_probs};

use crate::error::{Error, Result};

/// Which views of an image are predicted and how they are combined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Tta {
    /// One plain view: the centred region, resized.
    None,
    /// The plain view and its mirror image, averaged.
    Flip,
    /// fastai's `tta`: `n` augmented views averaged (or their maximum), blended with the
    /// plain view as `augmented + beta * (plain - augmented)`.
    Fastai {
        /// The number of augmented views, at least 1.
        n: usize,
        /// The plain view's weight in the blend, in 0..1.
        beta: f32,
        /// Take each class's largest probability over the augmented views instead of
        /// their mean.
        use_max: bool,
    },
    /// Four corners and the centre, each `scale` of the side (the ResNet paper's 224 of
    /// 256 is 0.875), and their mirror images.
    TenCrop {
        /// The side of each crop as a fraction (0..1] of the plain view's region.
        scale: f32,
    },
    /// The four corners and the centre without their mirror images.
    FiveCrop {
        /// The side of each crop as a fraction (0..1] of the plain view's region.
        scale: f32,
    },
}

impl Tta {
    /// fastai's defaults: `n = 4`, `beta = 0.25`, mean of the augmented views.
    pub const FASTAI: Tta = Tta::Fastai {
        n: 4,
        beta: 0.25,
        use_max: false,
    };

    /// `none`, `flip`, `fastai` or `ten-crop`, with their default settings.
    pub fn parse(name: &str) -> Result<Tta> {
        Ok(match name {
            "none" => Tta::None,
            "flip" => Tta::Flip,
            "fastai" => Tta::FASTAI,
            "ten-crop" | "10-crop" => Tta::TenCrop { scale: 0.875 },
            "five-crop" | "5-crop" => Tta::FiveCrop { scale: 0.875 },
            other => {
                return Err(Error::Invalid(format!(
                    "unknown test-time augmentation `{other}` (use none, flip, fastai, ten-crop or five-crop)"
                )));
            }
        })
    }

    /// A short name for tables and file names.
    pub fn name(&self) -> &'static str {
        match self {
            Tta::None => "none",
            Tta::Flip => "flip",
            Tta::Fastai { .. } => "fastai",
            Tta::TenCrop { .. } => "ten-crop",
            Tta::FiveCrop { .. } => "five-crop",
        }
    }

    /// Views predicted per image.
    pub fn views(&self) -> usize {
        match self {
            Tta::None => 1,
            Tta::Flip => 2,
            Tta::Fastai { n, .. } => 1 + n,
            Tta::TenCrop { .. } => 10,
            Tta::FiveCrop { .. } => 5,
        }
    }

    /// Checks the settings: fastai's needs `n >= 1` and `beta` in [0, 1], a crop's
    /// `scale` must be in (0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Tta::Fastai { n, beta, .. } if n == 0 || !(0.0..=1.0).contains(&beta) => {
                Err(Error::Invalid(format!(
                    "fastai TTA needs n >= 1 and beta in [0, 1] (got n = {n}, beta = {beta})"
                )))
            }
            Tta::TenCrop { scale } | Tta::FiveCrop { scale } if !(scale > 0.0 && scale <= 1.0) => {
                Err(Error::Invalid(format!(
                    "crop scale {scale} must be in (0, 1]"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Writes every view of `img` for `tta` into `out` (`views * 3 * size * size` values in
/// [0, 1], CHW per view). `aug` is the training augmentation (used by [`Tta::Fastai`]);
/// `ratio` bounds the aspect ratio of the plain view's centred crop.
#[allow(clippy::too_many_arguments)]
pub fn write_views(
    img: &RgbImage,
    size: u32,
    tta: &Tta,
    aug: &AugmentConfig,
    ratio: (f32, f32),
    seed: u64,
    index: u64,
    out: &mut [f32],
) {
    let len = 3 * (size as usize) * (size as usize);
    assert_eq!(out.len(), tta.views() * len, "one buffer per view");
    let (w, h) = (img.width(), img.height());
    let plain = AugmentParams::identity(w, h, ratio);
    let mut views = out.chunks_exact_mut(len);
    match *tta {
        Tta::None => apply(img, &plain, size, views.next().expect("one view")),
        Tta::Flip => {
            for flip in [false, true] {
                let p = AugmentParams {
                    flip,
                    ..plain.clone()
                };
                apply(img, &p, size, views.next().expect("two views"));
            }
        }
        Tta::Fastai { n, .. } => {
            apply(img, &plain, size, views.next().expect("the plain view"));
            for j in 0..n {
                let mut rng = ChaCha8Rng::seed_from_u64(Stream::Tta.seed(seed, &[index, j as u64]));
                let p = draw_params(aug, w, h, &mut rng);
                apply(img, &p, size, views.next().expect("n augmented views"));
            }
        }
        Tta::TenCrop { scale } | Tta::FiveCrop { scale } => {
            let flips: &[bool] = if matches!(tta, Tta::TenCrop { .. }) {
                &[false, true]
            } else {
                &[false]
            };
            for crop in ten_crop_rects(w, h, ratio, scale) {
                for &flip in flips {
                    let p = AugmentParams {
                        crop,
                        flip,
                        ..plain.clone()
                    };
                    apply(img, &p, size, views.next().expect("a view per crop"));
                }
            }
        }
    }
}

/// The four corner crops and the centre crop, each `scale` of the plain view's region.
pub fn ten_crop_rects(width: u32, height: u32, ratio: (f32, f32), scale: f32) -> [CropRect; 5] {
    let base = centre_crop(width, height, ratio);
    let (cw, ch) = (base.w * scale, base.h * scale);
    let (x0, y0) = (base.x, base.y);
    let (x1, y1) = (base.x + base.w - cw, base.y + base.h - ch);
    let at = |x: f32, y: f32| CropRect { x, y, w: cw, h: ch };
    [
        at(x0, y0),
        at(x1, y0),
        at(x0, y1),
        at(x1, y1),
        at((x0 + x1) / 2.0, (y0 + y1) / 2.0),
    ]
}

/// Combines the probabilities of one image's views (`views * k` values) into `k`.
pub fn combine(tta: &Tta, views: &[f32], k: usize) -> Vec<f32> {
    let rows: Vec<&[f32]> = views.chunks_exact(k).collect();
    let mean = |rows: &[&[f32]]| -> Vec<f32> {
        (0..k)
            .map(|c| rows.iter().map(|r| r[c]).sum::<f32>() / rows.len() as f32)
            .collect()
    };
    match *tta {
        Tta::None => rows[0].to_vec(),
        Tta::Flip | Tta::TenCrop { .. } | Tta::FiveCrop { .. } => mean(&rows),
        Tta::Fastai { beta, use_max, .. } => {
            let plain = rows[0];
            let aug: Vec<f32> = if use_max {
                (0..k)
                    .map(|c| rows[1..].iter().map(|r| r[c]).fold(f32::MIN, f32::max))
                    .collect()
            } else {
                mean(&rows[1..])
            };
            aug.iter()
                .zip(plain)
                .map(|(a, p)| a + beta * (p - a))
                .collect()
        }
    }
}

/// How images are predicted.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// The side of the square views given to the model, in pixels.
    pub size: u32,
    /// The test-time augmentation: which views are predicted and how they are combined.
    pub tta: Tta,
    /// The training augmentation, for [`Tta::Fastai`].
    pub augment: AugmentConfig,
    /// Per-channel mean and standard deviation the views are normalized with; use the
    /// ones the model was trained with.
    pub normalize: Normalize,
    /// Seed of the augmented views of [`Tta::Fastai`]; with each file's position in the
    /// list, it alone decides them.
    pub seed: u64,
    /// Views per forward pass.
    pub batch: usize,
    /// What to do with an image that cannot be decoded: fail, or skip and list it.
    pub on_bad_image: OnBadImage,
    /// Decompression-bomb guard: images with more pixels are rejected before decoding.
    pub max_pixels: u64,
    /// Hears of the prediction's progress ([`vista_format::Quiet`] by default).
    pub observer: vista_format::Observers,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            size: 64,
            tta: Tta::None,
            augment: AugmentConfig::default(),
            normalize: Normalize::IMAGENET,
            seed: 42,
            batch: 256,
            on_bad_image: OnBadImage::Error,
            max_pixels: vista_data::DEFAULT_MAX_PIXELS,
            observer: vista_format::Observers::default(),
        }
    }
}

impl PredictOptions {
    /// Plain predictions as a trained run sees its images: its last stage's `size`, its
    /// normalization (ImageNet's when it recorded none) and `seed`.
    pub fn for_run(size: u32, normalize: Option<Normalize>, seed: u64) -> Self {
        Self {
            size,
            normalize: normalize.unwrap_or(Normalize::IMAGENET),
            seed,
            ..Self::default()
        }
    }
}

/// Class probabilities (`[images, k]`) of decoded images; `indices[i]` is the index of
/// `images[i]` in the whole list, which seeds its augmented views.
pub fn predict_images<B: Backend, M: Classifier<B> + Module<B>>(
    model: &M,
    devices: &[B::Device],
    images: &(impl ImageSource + ?Sized),
    indices: &[u64],
    k: usize,
    opts: &PredictOptions,
) -> Vec<f32> {
    assert_eq!(images.count(), indices.len(), "one index per image");
    let s = opts.size as usize;
    let len = 3 * s * s;
    let views = opts.tta.views();
    let per_pass = (opts.batch / views).max(1);
    let ratio = (3.0 / 4.0, 4.0 / 3.0);
    let mut out = Vec::with_capacity(images.count() * k);
    for (c, chunk_indices) in indices.chunks(per_pass).enumerate() {
        let first = c * per_pass;
        let mut buf = vec![0.0f32; chunk_indices.len() * views * len];
        buf.par_chunks_mut(views * len)
            .zip(first..first + chunk_indices.len())
            .zip(chunk_indices)
            .for_each(|((dst, at), &index)| {
                write_views(
                    &images.image(at),
                    opts.size,
                    &opts.tta,
                    &opts.augment,
                    ratio,
                    opts.seed,
                    index,
                    dst,
                );
            });
        opts.normalize.apply(&mut buf, s);
        let probs = infer_probs::<B, M>(model, devices, &buf, s);
        for rows in probs.chunks_exact(views * k) {
            out.extend(combine(&opts.tta, rows, k));
        }
    }
    out
}

/// Predictions for image files, decoded a chunk at a time so memory stays bounded
/// whatever the number of files.
#[derive(Debug)]
pub struct FilePredictions {
    /// Indices into the input list of the files predicted (all but the bad ones).
    pub kept: Vec<usize>,
    /// `[kept, k]` probabilities.
    pub probs: Vec<f32>,
    /// Files that could not be decoded (only with [`OnBadImage::Skip`]).
    pub skipped: Vec<Problem>,
}

/// Decodes and predicts `files`; a bad file fails the call or is skipped and listed,
/// as `opts.on_bad_image` says.
pub fn predict_files<B: Backend, M: Classifier<B> + Module<B>>(
    model: &M,
    devices: &[B::Device],
    files: &[PathBuf],
    k: usize,
    opts: &PredictOptions,
) -> Result<FilePredictions> {
    opts.tta.validate()?;
    let task = (opts.observer).task(&format!("predict {}", opts.tta.name()), files.len() as u64);
    let chunk_len = 1024;
    let mut result = FilePredictions {
        kept: Vec::new(),
        probs: Vec::with_capacity(files.len() * k),
        skipped: Vec::new(),
    };
    for (c, chunk) in files.chunks(chunk_len).enumerate() {
        let decoded: Vec<_> = chunk
            .par_iter()
            .map(|p| decode_rgb(p, opts.max_pixels))
            .collect();
        let mut images = Vec::with_capacity(chunk.len());
        let mut indices = Vec::with_capacity(chunk.len());
        for (i, (path, d)) in chunk.iter().zip(decoded).enumerate() {
            match d {
                Ok(img) => {
                    images.push(img);
                    indices.push(c * chunk_len + i);
                }
                Err(kind) if opts.on_bad_image == OnBadImage::Skip => {
                    result.skipped.push(Problem {
                        path: path.clone(),
                        kind,
                    });
                }
                Err(problem) => {
                    return Err(Error::BadImage {
                        path: path.clone(),
                        problem,
                    });
                }
            }
        }
        // Views are seeded by the file's index in the whole list, so skipping a bad
        // file does not change the others' predictions.
        let seeds: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
        result
            .probs
            .extend(predict_images(model, devices, &images, &seeds, k, opts));
        result.kept.extend(indices);
        task.step(chunk.len() as u64);
    }
    drop(task);
    Ok(result)
}
