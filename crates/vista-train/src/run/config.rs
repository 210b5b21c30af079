//! What a run is given (`TrainConfig`, `TrainData`, `RunOptions`) and gives back
//! (`Outcome`).

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use vista_data::{AugmentConfig, Normalize};
use vista_schedule::{LrFindConfig, Schedule};

use vista_format::EpochMetrics;
use vista_models::{AnyModel, ModelConfig};

use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;

/// One stage of progressive resizing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageConfig {
    /// Side of the images this stage trains on, in pixels.
    pub size: u32,
    /// The number of epochs this stage trains.
    pub epochs: usize,
    /// Peak learning rate; `None` runs the LR finder first and takes its `valley`.
    pub lr: Option<f64>,
}

/// How each stage's learning rate moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleKind {
    /// fastai's `fit_one_cycle` (defaults: pct_start 0.25, div 25, div_final 1e5).
    OneCycle {
        /// Share of the steps (0..1) spent warming up to the peak rate.
        pct_start: f64,
        /// Divisor giving the starting rate, the peak rate over `div`.
        div: f64,
        /// Divisor giving the final rate, the peak rate over `div_final`.
        div_final: f64,
    },
    /// SGDR: cosine restarts every `cycle_len` epochs, each cycle `cycle_mult` times
    /// longer, down to `lr / 100`.
    Sgdr {
        /// Epochs of the first cycle (at least 1 is used; 1 when parsed from `sgdr`).
        cycle_len: usize,
        /// How many times longer each cycle is than the one before (2 when parsed).
        cycle_mult: f64,
    },
    /// fastai's `fit_flat_cos`.
    FlatCos,
    /// Cosine annealing to `lr / 100`.
    Cosine,
}

impl Default for ScheduleKind {
    fn default() -> Self {
        ScheduleKind::OneCycle {
            pct_start: 0.25,
            div: 25.0,
            div_final: 1e5,
        }
    }
}

impl ScheduleKind {
    /// The schedule named `name` (`one-cycle`, `sgdr`, `flat-cos` or `cosine`; `_` may
    /// stand for `-`) with its default settings.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "one-cycle" | "one_cycle" => Self::default(),
            "sgdr" => ScheduleKind::Sgdr {
                cycle_len: 1,
                cycle_mult: 2.0,
            },
            "flat-cos" | "flat_cos" => ScheduleKind::FlatCos,
            "cosine" => ScheduleKind::Cosine,
            other => {
                return Err(Error::UnknownSchedule { name: other.into() });
            }
        })
    }

    /// The schedule of a fit at peak rate `lr` with `per_epoch` steps per epoch.
    pub fn schedule(&self, lr: f64, per_epoch: usize) -> Schedule {
        match *self {
            ScheduleKind::OneCycle {
                pct_start,
                div,
                div_final,
            } => Schedule::OneCycle {
                lr_max: lr,
                div,
                div_final,
                pct_start,
                moms: (0.95, 0.85, 0.95),
            },
            ScheduleKind::Sgdr {
                cycle_len,
                cycle_mult,
            } => Schedule::Sgdr {
                lr_max: lr,
                lr_min: lr / 100.0,
                cycle_len: cycle_len.max(1) * per_epoch.max(1),
                cycle_mult,
            },
            ScheduleKind::FlatCos => Schedule::flat_cos(lr),
            ScheduleKind::Cosine => Schedule::Cosine {
                lr_max: lr,
                lr_min: lr / 100.0,
            },
        }
    }
}

/// Every setting of a run; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// The network: its architecture, number of classes, width and stem.
    pub model: ModelConfig,
    /// Pretrained weights (PyTorch `.pth` or safetensors) for the body.
    pub pretrained: Option<PathBuf>,
    /// A finished run folder whose whole model this run starts from (fastai's
    /// `learn.load` before another `fit`): it must have the same model settings and
    /// classes; its normalization is kept, since its weights learned it.
    pub init_from: Option<PathBuf>,
    /// With pretrained weights: epochs with the body frozen before the stages (fastai's
    /// `fine_tune`), after which every layer group trains at its own rate, from 1/100 of
    /// the stage's rate for the earliest group to the full rate for the head.
    pub freeze_epochs: usize,
    /// The stages of progressive resizing, trained in order (at least one); the finished
    /// model predicts at the last one's size. By default one epoch at 64 px.
    pub stages: Vec<StageConfig>,
    /// How the learning rate moves within each stage (one-cycle by default, fastai's
    /// `fit_one_cycle`); the frozen epochs always use one-cycle with `pct_start` 0.99.
    pub schedule: ScheduleKind,
    /// The optimizer and its hyperparameters (fastai's `opt_func`; AdamW by default).
    pub optimizer: OptimizerConfig,
    /// Images per training step, split over the shards (fastai's `bs`; 64 by default);
    /// validation batches hold twice as many.
    pub batch_size: usize,
    /// Share of each class held out for validation.
    pub valid_pct: f32,
    /// Mixup's α (`None` = no mixup).
    pub mixup: Option<f32>,
    /// ε of label smoothing, in [0, 1) (fastai's `LabelSmoothingCrossEntropy`); 0, the
    /// default, is plain cross-entropy.
    pub label_smoothing: f32,
    /// fastai's `aug_transforms` (`None` = resize only).
    pub augment: Option<AugmentConfig>,
    /// Input normalization; `None` = ImageNet's with pretrained weights, else the
    /// training images' own statistics (resolved and saved when the run starts).
    pub normalize: Option<Normalize>,
    /// The LR finder's sweep (fastai's `lr_find` defaults), run for stages whose rate is
    /// `auto` (see `find_lr_each_stage`).
    pub lr_find: LrFindConfig,
    /// Run the LR finder at every stage whose rate is `auto`. Off (the default), only
    /// the first such stage runs it and later ones reuse its rate: on a model that has
    /// already learned, the finder's valley sits where the loss is flat and is far too
    /// low.
    pub find_lr_each_stage: bool,
    /// Seed of the validation split, the initial weights, the batches, augmentation,
    /// mixup, dropout and the extra images drawn: the same seed gives the same run.
    pub seed: u64,
    /// Loader threads (0 = one per core).
    pub workers: usize,
    /// Data-parallel shards per batch, each on its own thread and device.
    pub shards: usize,
    /// Where extra training images came from (e.g. `vista gan sample`'s folder); a
    /// record only: the images arrive in [`TrainData`](crate::TrainData).
    pub extra_data: Option<PathBuf>,
    /// Extra images added to the training part, per real training image; drawn once
    /// per run, seeded, from the extra pool. They never enter validation.
    pub extra_ratio: f32,
    /// What the best epoch is judged by (`best.safetensors` keeps its model).
    pub monitor: Monitor,
    /// Stop after this many epochs without a better monitored value (fastai's
    /// `EarlyStoppingCallback`'s `patience`); never when unset.
    pub early_stop: Option<usize>,
    /// A weight per class (in class order) in the training loss; see
    /// [`balanced_weights`].
    pub class_weights: Option<Vec<f32>>,
}

/// scikit-learn's `"balanced"` class weights: `n / (k · n_c)` for class `c` of `n_c`
/// among `n` labels, so every class weighs the same in the loss whatever its count; a
/// class without labels gets 0 (it cannot be learned from this data anyway).
pub fn balanced_weights(labels: &[u32], k: usize) -> Vec<f32> {
    let mut counts = vec![0usize; k];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let n = labels.len() as f64;
    (counts.iter())
        .map(|&c| match c {
            0 => 0.0,
            c => (n / (k as f64 * c as f64)) as f32,
        })
        .collect()
}

/// The validation figure that says which epoch is the best.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    /// The validation loss, lower is better (fastai's default).
    #[default]
    ValidLoss,
    /// The validation accuracy, higher is better.
    Accuracy,
}

impl Monitor {
    /// The name of the figure, as `metrics.csv` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValidLoss => "valid_loss",
            Monitor::Accuracy => "accuracy",
        }
    }

    /// Reads `valid_loss` (or `valid-loss`) or `accuracy`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "valid_loss" | "valid-loss" => Some(Monitor::ValidLoss),
            "accuracy" => Some(Monitor::Accuracy),
            _ => None,
        }
    }

    /// The monitored figure of an epoch, turned so that lower is better.
    pub fn score(self, m: &vista_format::EpochMetrics) -> f32 {
        match self {
            Monitor::ValidLoss => m.valid_loss,
            Monitor::Accuracy => -m.accuracy,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::default(),
            pretrained: None,
            init_from: None,
            freeze_epochs: 1,
            stages: vec![StageConfig {
                size: 64,
                epochs: 1,
                lr: None,
            }],
            schedule: ScheduleKind::default(),
            optimizer: OptimizerConfig::default(),
            batch_size: 64,
            valid_pct: 0.1,
            mixup: None,
            label_smoothing: 0.0,
            augment: Some(AugmentConfig::default()),
            normalize: None,
            lr_find: LrFindConfig::default(),
            find_lr_each_stage: false,
            seed: 42,
            workers: 0,
            shards: 1,
            extra_data: None,
            extra_ratio: 0.0,
            monitor: Monitor::default(),
            early_stop: None,
            class_weights: None,
        }
    }
}

/// How a run is carried out, beside its settings: whether it resumes, and who hears of
/// its progress.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Carry on from the run folder's last checkpoint.
    pub resume: bool,
    /// Hears of steps, epochs and notes ([`vista_format::Quiet`] by default).
    pub observer: vista_format::Observers,
}

/// What a run leaves behind, also in its folder.
#[derive(Debug)]
pub struct Outcome<B: Backend> {
    /// The trained model, also saved as the run's `model.bin`.
    pub model: AnyModel<B>,
    /// Every epoch's metrics, over all phases in order.
    pub metrics: Vec<EpochMetrics>,
    /// Learning rate of each phase (found or given).
    pub lrs: Vec<f64>,
}

/// Where a default recipe will train: it sizes the model for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A CPU: the default recipe keeps 1/8 of the model's channels.
    Cpu,
    /// A GPU: the model keeps its full width.
    Gpu,
}

/// The largest image side the default recipe trains at.
pub const MAX_DEFAULT_SIZE: u32 = 224;

/// The largest image side the default recipe trains at in batches of 128; above it
/// batches hold 64 images ([`default_batch`]).
pub const THUMBNAIL_SIDE: u32 = 64;

/// The default recipe's batch size for a dataset of `images` trained at up to `size`
/// px: 128 for thumbnails ([`THUMBNAIL_SIDE`] or less), 64 above (fastai's default; a
/// training step's memory grows with the batch and the pixels, and 64 photos at 224 px
/// keep it well under a gigabyte); for fewer than twice that many training images the
/// largest power of two (at least 2) that gives the training part, 90% of them, two full
/// batches, so a small folder of photos trains rather than making no batch at all.
///
/// ```
/// assert_eq!(vista_train::default_batch(60_000, 28), 128);
/// assert_eq!(vista_train::default_batch(10_000, 224), 64);
/// assert_eq!(vista_train::default_batch(40, 28), 16);
/// assert_eq!(vista_train::default_batch(3, 224), 2);
/// ```
pub fn default_batch(images: usize, size: u32) -> usize {
    let train = images * 9 / 10;
    let mut batch = if size <= THUMBNAIL_SIDE { 128 } else { 64 };
    while batch > 2 && 2 * batch > train {
        batch /= 2;
    }
    batch
}

/// The default batch of each fold's run when `folds` models are trained out of fold on
/// `images` at up to `size` px: [`default_batch`] of the (k − 1)/k of them one fold
/// trains on.
///
/// ```
/// assert_eq!(vista_train::default_batch(40, 28), 16);
/// assert_eq!(vista_train::fold_batch(40, 2, 28), 8);
/// assert_eq!(vista_train::fold_batch(60_000, 5, 28), 128);
/// ```
pub fn fold_batch(images: usize, folds: usize, size: u32) -> usize {
    default_batch(images - images.div_ceil(folds.max(1)), size)
}

/// The median shorter side of images of these `(width, height)`s, capped at
/// [`MAX_DEFAULT_SIZE`] (64 for no image).
pub fn typical_size(sizes: &[(u32, u32)]) -> u32 {
    let mut sides: Vec<u32> = sizes.iter().map(|&(w, h)| w.min(h)).collect();
    sides.sort_unstable();
    (sides.get(sides.len() / 2).copied())
        .unwrap_or(64)
        .min(MAX_DEFAULT_SIZE)
}

/// The shorter side images are decoded down to for a run whose largest stage is
/// `largest` px: 15% above it, room for the crops and zooms of the augmentations, so a
/// phone photo of 12 megapixels is held as some 80 thousand pixels.
pub fn cache_side(largest: u32) -> u32 {
    (f64::from(largest) * 1.15).ceil() as u32
}

impl TrainConfig {
    /// The default recipe for images of these `(width, height)`s (as stored, before any
    /// bound) and `classes` classes, chosen to train fast where
    /// vista runs:
    /// - progressive resizing: two epochs at about half the images' size (a quarter of
    ///   the pixels, a multiple of 4, at least 8), then two at their size
    ///   ([`typical_size`]);
    /// - one-cycle with AdamW at the LR finder's valley, found at the first stage and
    ///   kept;
    /// - label smoothing 0.1; mixup off (it pays off over long schedules);
    /// - fastai's augmentations, except on thumbnails of 32 px or less, where rotations,
    ///   warps and zooms remove more signal than a few epochs can use;
    /// - a ResNet-18 with the small-image stem for images of 64 px or less, at 1/8 of its
    ///   channels on the CPU and full width on a GPU;
    /// - batches of 128 for thumbnails and 64 (fastai's default) for larger images, or of
    ///   the largest power of two that leaves a small dataset's training part (90% of its
    ///   images) two full batches ([`default_batch`]).
    ///
    /// ```
    /// use vista_train::{Target, TrainConfig};
    /// let thumbs = vec![(28, 28); 5];
    /// let cfg = TrainConfig::default_recipe(&thumbs, 10, Target::Cpu);
    /// let sizes: Vec<u32> = cfg.stages.iter().map(|s| s.size).collect();
    /// assert_eq!(sizes, [16, 28]);
    /// assert!(cfg.model.small_stem && cfg.augment.is_none());
    /// ```
    pub fn default_recipe(sizes: &[(u32, u32)], classes: usize, target: Target) -> TrainConfig {
        let full = typical_size(sizes);
        let half = ((full / 2).div_ceil(4) * 4).max(8);
        TrainConfig {
            model: ModelConfig {
                arch: vista_models::Arch::Resnet18,
                num_classes: classes,
                width: match target {
                    Target::Cpu => 0.125,
                    Target::Gpu => 1.0,
                },
                small_stem: ModelConfig::small_stem_suits(full),
                fastai_head: false,
            },
            stages: vec![
                StageConfig {
                    size: half,
                    epochs: 2,
                    lr: None,
                },
                StageConfig {
                    size: full,
                    epochs: 2,
                    lr: None,
                },
            ],
            batch_size: default_batch(sizes.len(), full),
            mixup: None,
            label_smoothing: 0.1,
            augment: (full > 32).then(AugmentConfig::default),
            ..TrainConfig::default()
        }
    }

    /// The largest image size of the stages (64 for none), which the default batch
    /// and the small stem are chosen by.
    pub fn largest_size(&self) -> u32 {
        self.stages.iter().map(|s| s.size).max().unwrap_or(64)
    }

    /// The image size of the last stage, which the finished model predicts at.
    pub fn final_size(&self) -> u32 {
        self.stages.last().map_or(64, |s| s.size)
    }

    /// Checks every setting is in its range and none contradicts another.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &'static str, why: String| Err(Error::Invalid { setting, why });
        if self.early_stop == Some(0) {
            return bad(
                "early_stop",
                "patience of at least 1 epoch is needed".into(),
            );
        }
        if let Some(w) = &self.class_weights {
            let k = self.model.num_classes;
            if w.len() != k
                || w.iter().any(|v| !v.is_finite() || *v < 0.0)
                || !w.iter().any(|v| *v > 0.0)
            {
                return bad(
                    "class_weights",
                    format!("{k} weights of 0 or more, not all 0, are needed: {w:?}"),
                );
            }
        }
        if self.stages.is_empty() {
            return bad(
                "stages",
                "at least one stage (size and epochs) is needed".into(),
            );
        }
        for s in &self.stages {
            if s.size < self.model.arch.min_size() {
                return bad(
                    "stages",
                    format!(
                        "{} needs images of at least {} px, a stage asks for {}",
                        self.model.arch.name(),
                        self.model.arch.min_size(),
                        s.size
                    ),
                );
            }
            if let Some(lr) = s.lr
                && !(lr > 0.0 && lr.is_finite())
            {
                return bad("lr", format!("learning rate {lr} is not positive"));
            }
        }
        if self.batch_size == 0 {
            return bad("batch_size", "batch size must be positive".into());
        }
        if !(0.0..1.0).contains(&self.valid_pct) || self.valid_pct == 0.0 {
            return bad(
                "valid_pct",
                format!("valid_pct {} must be in (0, 1)", self.valid_pct),
            );
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(
                "label_smoothing",
                format!("label smoothing {} must be in [0, 1)", self.label_smoothing),
            );
        }
        if let Some(a) = self.mixup
            && !(a > 0.0 && a.is_finite())
        {
            return bad("mixup", format!("mixup alpha {a} must be positive"));
        }
        if !(self.extra_ratio >= 0.0 && self.extra_ratio.is_finite()) {
            return bad(
                "extra_ratio",
                format!("extra ratio {} must be zero or positive", self.extra_ratio),
            );
        }
        if self.extra_ratio > 0.0 && self.extra_data.is_none() {
            return bad(
                "extra_data",
                format!(
                    "extra ratio {} without extra data (a folder of extra images)",
                    self.extra_ratio
                ),
            );
        }
        if self.pretrained.is_some() && self.init_from.is_some() {
            return bad(
                "init_from",
                "pretrained weights and a run to start from both give the starting weights; \
                 choose one"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(w: u32, h: u32, n: usize) -> Vec<(u32, u32)> {
        vec![(w, h); n]
    }

    #[test]
    fn an_invalid_setting_is_named_in_the_error() {
        let bad = |edit: fn(&mut TrainConfig)| {
            let mut cfg = TrainConfig::default();
            edit(&mut cfg);
            match cfg.validate() {
                Err(Error::Invalid { setting, .. }) => setting,
                other => panic!("{other:?}"),
            }
        };
        assert!(TrainConfig::default().validate().is_ok());
        assert_eq!(bad(|c| c.valid_pct = 1.0), "valid_pct");
        assert_eq!(bad(|c| c.batch_size = 0), "batch_size");
        assert_eq!(bad(|c| c.stages.clear()), "stages");
        assert_eq!(bad(|c| c.mixup = Some(-1.0)), "mixup");
        assert_eq!(bad(|c| c.extra_ratio = 0.5), "extra_data");
        assert_eq!(bad(|c| c.label_smoothing = 1.0), "label_smoothing");
        assert!(matches!(
            ScheduleKind::parse("linear"),
            Err(Error::UnknownSchedule { name }) if name == "linear"
        ));
    }

    #[test]
    fn balanced_weights_even_out_the_classes() {
        let w = balanced_weights(&[0, 0, 0, 1], 3);
        assert_eq!(w, [4.0 / 9.0, 4.0 / 3.0, 0.0]);
        // Each class's total weight is the same: 3 · 4/9 = 1 · 4/3.
        assert!((3.0 * w[0] - w[1]).abs() < 1e-6);
        let mut cfg = TrainConfig::default();
        cfg.model.num_classes = 3;
        cfg.class_weights = Some(w);
        assert!(cfg.validate().is_ok());
        cfg.class_weights = Some(vec![1.0, 2.0]);
        assert!(matches!(
            cfg.validate(),
            Err(Error::Invalid {
                setting: "class_weights",
                ..
            })
        ));
        cfg.class_weights = Some(vec![0.0; 3]);
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn the_default_recipe_resizes_from_half_the_typical_side_and_caps_it() {
        let photos = TrainConfig::default_recipe(&images(300, 400, 3), 4, Target::Gpu);
        let sizes: Vec<u32> = photos.stages.iter().map(|s| s.size).collect();
        assert_eq!(sizes, [112, 224], "the median shorter side, capped at 224");
        assert!(!photos.model.small_stem && photos.augment.is_some());
        assert_eq!((photos.model.width, photos.model.num_classes), (1.0, 4));
        let odd = TrainConfig::default_recipe(&images(45, 45, 1), 2, Target::Cpu);
        let sizes: Vec<u32> = odd.stages.iter().map(|s| s.size).collect();
        assert_eq!(sizes, [24, 45], "half rounded up to a multiple of 4");
        assert_eq!(odd.model.width, 0.125);
        let none = TrainConfig::default_recipe(&[], 2, Target::Cpu);
        assert_eq!(none.stages.last().map(|s| s.size), Some(64));
        assert_eq!(typical_size(&images(6, 6, 1)), 6);
        let tiny = TrainConfig::default_recipe(&images(6, 6, 1), 2, Target::Cpu);
        assert_eq!(tiny.stages[0].size, 8, "never below 8 px");
    }

    #[test]
    fn the_median_side_decides_not_the_mean() {
        let mut mixed = images(28, 28, 3);
        mixed.extend(images(1000, 1000, 2));
        assert_eq!(typical_size(&mixed), 28);
    }
}
