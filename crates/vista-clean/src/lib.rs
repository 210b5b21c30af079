//! vista-clean: finding confusing training images and cleaning them out, undoably.
//!
//! - [`out_of_fold`] predicts every training image with a model that never saw it
//!   (k stratified folds, seeded); [`flag`] applies the article's rules ([`Rules`]:
//!   wrong with probability > 0.9, or top probability in [0.5, 0.6]).
//! - [`Manifest`] lists the flags (CSV and JSON), draws contact sheets, and becomes a
//!   [`vista_data::CleanView`] that every loader honours; no image is deleted.
//! - [`Review`] serves a local page where a person keeps, relabels or removes each
//!   flagged image; decisions go to a journal at once; [`apply_journal`] moves removed
//!   images to a quarantine folder and [`undo_review`] moves them back.
//! - [`flip_labels`] and [`score_detection`] make the noisy-label benchmark.
//!
//! # Example
//!
//! The article's rules applied to three labelled predictions:
//!
//! ```
//! use vista_clean::{Reason, Rules, flag};
//! use vista_eval::Predictions;
//!
//! let classes = vec!["cat".to_string(), "dog".to_string()];
//! let images: Vec<String> = ["a.png", "b.png", "c.png"].map(String::from).to_vec();
//! // Given labels: cat, cat, dog. Probabilities of (cat, dog) for each image:
//! let probs = vec![0.05, 0.95, 0.55, 0.45, 0.2, 0.8];
//! let preds = Predictions::from_probs(classes, images, Some(vec![0, 0, 1]), probs);
//!
//! let flags = flag(&preds, &Rules::default());
//! assert_eq!(flags.len(), 2);
//! assert_eq!((flags[0].image.as_str(), flags[0].reason), ("a.png", Reason::LikelyMislabelled));
//! assert_eq!((flags[0].given.as_str(), flags[0].predicted.as_str()), ("cat", "dog"));
//! assert_eq!((flags[1].image.as_str(), flags[1].reason), ("b.png", Reason::Ambiguous));
//! ```

#![warn(missing_docs)]

mod apply;
mod detect;
mod error;
mod kfold;
mod manifest;
mod noise;
mod review;

pub use apply::{Applied, Undone, apply_journal, quarantine_dir, undo_review};
pub use detect::{Flag, Reason, Rules, flag, top_losses};
pub use error::{Error, Result};
pub use kfold::{out_of_fold, stratified_folds};
pub use manifest::{Manifest, contact_sheets, manifest_view};
pub use noise::{flip_labels, flip_labels_by_name, score_detection};
pub use review::{
    Decision, JournalEntry, Review, append_journal, read_journal, repair_journal, resolve_inside,
};
pub use vista_format::{Detection, DetectionReport};
