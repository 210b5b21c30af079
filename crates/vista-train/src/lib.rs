//! vista-train: the training engine.
//!
//! - [`Learner`] fits a [`vista_models::Classifier`] with any
//!   [`vista_schedule::Schedule`], AdamW or SGD, label smoothing and mixup, runs fastai's
//!   LR finder and restores the model afterwards, freezes and unfreezes layer groups with
//!   discriminative learning rates, and splits batches over devices for data parallelism.
//! - [`train`] runs a whole [`TrainConfig`]: fine-tuning's frozen epochs, then the
//!   stages of progressive resizing, with checkpoints after every epoch that `resume`
//!   continues from, and writes config, metrics, plots and model into a run folder.
//! - [`train_gan`] trains a Wasserstein GAN on a dataset's images (weight clipping,
//!   RMSprop, 5 critic steps per generator step), resumable; [`generate`] samples it.
//! - [`ScheduledLr`] puts vista's schedules behind burn's `LrScheduler`.

#![warn(missing_docs)]

mod error;
mod gan;
mod learner;
mod loss;
mod optim;
mod parallel;
mod record;
mod run;
mod sched;

pub use error::{Error, Result};
pub use gan::{
    GanConfig, Samples, TrainedGan, all_grey, generate, load_gan, train_gan, write_synthetic,
};
pub use learner::{FINE_TUNE_LR_MULT, FitSpec, Flow, Learner, LearnerConfig, even_mults};
pub use loss::{soft_cross_entropy_sum, targets, targets_tensor};
pub use optim::{Optim, OptimizerConfig};
pub use record::{MAX_RECORD_BYTES, RunRecorder};
pub use run::{
    MAX_DEFAULT_SIZE, Monitor, Outcome, RunLock, RunOptions, ScheduleKind, StageConfig,
    THUMBNAIL_SIDE, Target, TrainConfig, TrainData, TrainedRun, ValidSet, balanced_weights,
    cache_side, default_batch, find_lr, fold_batch, latest_checkpoint, load_run, train,
    typical_size,
};
pub use sched::ScheduledLr;
pub use vista_format::{EpochMetrics, GanEpoch, GanStep, StepRecord, format_secs, write_metrics};
