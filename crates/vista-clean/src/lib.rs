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
