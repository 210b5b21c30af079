//! The files vista writes and reads, with no burn: the layout of its folders
//! ([`RunDir`], [`GanDir`], ...), one Rust type per artefact (metrics, LR-finder record,
//! evaluation, flags, GAN records, `--json` summaries), atomic durable writes and bounded
//! reads ([`write_atomic`], [`read_limited`]), the class-name rule, and the named seed
//! streams ([`Stream`]), and the [`Observer`] through which long calls report progress.
//!
//! Every writer and every reader of a file uses its type here, so a renamed field fails
//! to compile or to parse instead of giving a quietly wrong number. Programs that drive
//! vista (xtask, a user's scripts in Rust) depend on this crate alone.
//!
//! ```
//! use vista_format::{EpochMetrics, RunDir, read_json, write_metrics};
//! let dir = tempfile::tempdir().unwrap();
//! let row = EpochMetrics {
//!     phase: "28px".into(), epoch: 1, size: 28, lr: 1e-2, train_loss: 0.6,
//!     valid_loss: 0.5, accuracy: 0.8, error_rate: 0.2, images_per_sec: 900.0, wall_s: 3.0,
//! };
//! write_metrics(dir.path(), &[row.clone()]).unwrap();
//! let back: Vec<EpochMetrics> = read_json(&RunDir::new(dir.path()).metrics_json()).unwrap();
//! assert_eq!(back, [row]);
//! ```

#![warn(missing_docs)]

mod classes;
mod clean;
mod error;
mod eval;
mod export;
mod fsutil;
mod gan;
mod json;
mod layout;
mod normalize;
mod observe;
mod seed;
mod summary;
mod torch_file;
mod train;

pub use classes::{BadClassName, MAX_CLASS_NAME_BYTES, check_class_list, check_class_name};
pub use clean::{Detection, DetectionReport, Flag, Manifest, Reason, Rules};
pub use error::{Error, Result};
pub use eval::{ClassScores, Confusion, Evaluation, TopLoss, ValidReport};
pub use export::ExportInfo;
pub use fsutil::{
    fault_point, read_limited, refuse_symlink, rename_noreplace, sync_dir, write_atomic,
    write_atomic_with,
};
pub use gan::{Consistency, GanEpoch, GanStep, GeneratorInfo, SyntheticImage, SyntheticManifest};
pub use json::{MAX_JSON_BYTES, parse_json, read_json, read_json_limited, write_json};
pub use layout::{
    CONSISTENCY_FILE, CheckpointDir, Checkpointed, CleanDir, EvalDir, GanDir, LrFindDir, RunDir,
    SYNTHETIC_MANIFEST, SyntheticDir, checkpoint_name, is_checkpoint_name,
};
pub use normalize::Normalize;
pub use observe::{Observer, Observers, Quiet, Task};
pub use seed::{Stream, derive_seed};
pub use summary::{ClassCount, DataSummary, ModelBench, PredictSummary, PreparedData};
pub use torch_file::{Dtype, ReadError, TensorRef, TorchFile};
pub use train::{
    BestEpoch, EpochMetrics, LrFindRecord, StepRecord, Suggestions, format_secs, write_metrics,
};
