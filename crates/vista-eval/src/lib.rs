//! vista-eval: how good a classifier is, and how to make its predictions better.
//!
//! - [`predict_files`] predicts image files a chunk at a time with test-time
//!   augmentation ([`Tta`]: fastai's `tta`, flips, 10-crop).
//! - [`Predictions`] is a prediction file; [`ensemble`] combines several by the article's
//!   majority vote with a seeded random tie-break ([`vote`]), or by (weighted) mean.
//! - [`evaluate`] scores predictions: accuracy with its interval, per-class precision,
//!   recall and F1, the confusion matrix, most-confused pairs and top losses, drawn by
//!   `vista_plot::confusion_png` and `vista_plot::tiles_png`.
//! - [`write_av_csv`] and [`write_folders`] write competition submissions.

mod ensemble;
mod error;
mod metrics;
mod predictions;
mod submit;
mod tta;

pub use ensemble::{Method, ensemble, vote};
pub use error::{Error, Result};
pub use metrics::{ClassScores, Confusion, Evaluation, TopLoss, accuracy_interval, evaluate};
pub use predictions::{Predictions, argmax, read_labels};
pub use submit::{Placement, write_av_csv, write_folders};
pub use tta::{
    FilePredictions, PredictOptions, Tta, combine, predict_files, predict_images, ten_crop_rects,
    write_views,
};
