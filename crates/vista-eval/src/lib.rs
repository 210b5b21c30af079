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
//!
//! # Example
//!
//! Three models' predictions of the same three images, combined by majority vote:
//!
//! ```
//! use std::path::PathBuf;
//!
//! use vista_eval::{Method, Predictions, ensemble, evaluate};
//!
//! # fn main() -> Result<(), vista_eval::Error> {
//! let classes = vec!["cat".to_string(), "dog".to_string()];
//! let images: Vec<String> = ["a.png", "b.png", "c.png"].map(String::from).to_vec();
//! let labels = vec![0, 1, 1];
//! let member = |name: &str, probs: Vec<f32>| {
//!     let labels = Some(labels.clone());
//!     let preds = Predictions::from_probs(classes.clone(), images.clone(), labels, probs);
//!     (PathBuf::from(name), preds)
//! };
//! let members = [
//!     member("a.csv", vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4]), // predicts cat, dog, cat
//!     member("b.csv", vec![0.7, 0.3, 0.4, 0.6, 0.3, 0.7]), // predicts cat, dog, dog
//!     member("c.csv", vec![0.4, 0.6, 0.1, 0.9, 0.2, 0.8]), // predicts dog, dog, dog
//! ];
//! assert!((evaluate(&members[0].1, 0)?.accuracy - 2.0 / 3.0).abs() < 1e-9);
//!
//! let voted = ensemble(&members, &Method::Vote, 42)?;
//! assert_eq!(voted.predicted, [0, 1, 1]);
//! // A vote's "probabilities" are each class's share of the votes.
//! assert!((voted.row(0)[0] - 2.0 / 3.0).abs() < 1e-6);
//! assert_eq!(evaluate(&voted, 0)?.accuracy, 1.0);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod ensemble;
mod error;
mod metrics;
mod predictions;
mod submit;
mod tta;

pub use ensemble::{Method, ensemble, vote};
pub use error::{Error, Result};
pub use metrics::{ClassScores, Confusion, Evaluation, TopLoss, accuracy_interval, evaluate};
pub use predictions::{MAX_PREDICTIONS_BYTES, Predictions, argmax, read_labels};
pub use submit::{Placement, write_av_csv, write_folders};
pub use tta::{
    FilePredictions, PredictOptions, Tta, combine, predict_files, predict_images, ten_crop_rects,
    write_views,
};
