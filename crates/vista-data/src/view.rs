//! A cleaned view of a dataset: images left out and labels corrected, kept in
//! `vista-clean.json` at the dataset's root. [`open`](crate::open) honours it, so every
//! loader sees the cleaned data, while the image files stay as they are.
//!
//! Undoing a cleaning renames the file away (it is kept as `vista-clean.undone.json`),
//! which restores the full view; replacing it keeps the previous one as
//! `vista-clean.prev.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::source::{Dataset, Sample};
use vista_format::{read_limited, refuse_symlink, sync_dir, write_atomic};

/// The file name of the view at a dataset's root.
pub const VIEW_FILE: &str = "vista-clean.json";
/// The view a newer one replaced, beside it.
pub const PREV_VIEW_FILE: &str = "vista-clean.prev.json";
/// An undone view, beside where it was.
pub const UNDONE_VIEW_FILE: &str = "vista-clean.undone.json";
/// The largest view file read.
pub const MAX_VIEW_BYTES: u64 = 64 << 20;

/// Files left out of a dataset and labels replaced, by path relative to its root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanView {
    /// Left out of training and test listings.
    #[serde(default)]
    pub excluded: Vec<PathBuf>,
    /// New class names of mislabelled images.
    #[serde(default)]
    pub relabelled: BTreeMap<PathBuf, String>,
}

/// Where a dataset's view lives: beside a CSV file, or inside a dataset folder.
pub fn view_path(dataset: &Path) -> PathBuf {
    if dataset.is_file() {
        dataset.with_file_name(VIEW_FILE)
    } else {
        dataset.join(VIEW_FILE)
    }
}

impl CleanView {
    /// True when the view neither leaves out nor relabels any image.
    pub fn is_empty(&self) -> bool {
        self.excluded.is_empty() && self.relabelled.is_empty()
    }

    /// The view of the dataset at `dataset`, if it has one.
    /// A view shipped with a dataset is untrusted: it is read only if it is a plain file
    /// of at most [`MAX_VIEW_BYTES`], and a symbolic link is refused.
    pub fn read(dataset: &Path) -> Result<Option<CleanView>> {
        let path = view_path(dataset);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        refuse_symlink(&path)?;
        let bytes = read_limited(&path, MAX_VIEW_BYTES)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Json { path, source })
    }

    /// Writes the view atomically; a view already there is kept as
    /// `vista-clean.prev.json` (written atomically too: nothing is copied onto a path
    /// that could be a link). Links at either name are refused.
    pub fn write(&self, dataset: &Path) -> Result<PathBuf> {
        Self::keep_previous(dataset)?;
        self.replace(dataset)
    }

    /// Copies the current view, if any, to `vista-clean.prev.json` (atomically); returns
    /// whether there was one. [`CleanView::write`] does this first.
    pub fn keep_previous(dataset: &Path) -> Result<bool> {
        let path = view_path(dataset);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(false);
        }
        refuse_symlink(&path)?;
        let old = read_limited(&path, MAX_VIEW_BYTES)?;
        write_atomic(&path.with_file_name(PREV_VIEW_FILE), &old)?;
        Ok(true)
    }

    /// Writes the view atomically, leaving `vista-clean.prev.json` as it is: for a step
    /// that kept the previous view itself, before an interruption could change it.
    pub fn replace(&self, dataset: &Path) -> Result<PathBuf> {
        let path = view_path(dataset);
        let json = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Restores the full dataset: the view is renamed to `vista-clean.undone.json`.
    /// Returns false when there was no view.
    pub fn undo(dataset: &Path) -> Result<bool> {
        let path = view_path(dataset);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(false);
        }
        let undone = path.with_file_name(UNDONE_VIEW_FILE);
        refuse_symlink(&undone)?;
        std::fs::rename(&path, &undone).map_err(io_err(&path))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        Ok(true)
    }

    /// Applies the view to a freshly listed dataset. A relabelling to a class the
    /// dataset does not have is an error naming the file and the class.
    pub fn apply(&self, ds: &mut Dataset) -> Result<()> {
        let root = ds.root.clone();
        let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).to_path_buf();
        let excluded: std::collections::HashSet<&PathBuf> = self.excluded.iter().collect();
        let keep = |s: &Sample| !excluded.contains(&rel(&s.path));
        ds.train.retain(keep);
        ds.valid.retain(keep);
        ds.test.retain(keep);
        ds.unlabelled.retain(|p| !excluded.contains(&rel(p)));
        // A removed image a CSV still names is not a missing file: it was moved on
        // purpose (to the review's quarantine).
        ds.problems.retain(|p| !excluded.contains(&rel(&p.path)));
        for s in (ds.train.iter_mut())
            .chain(ds.valid.iter_mut())
            .chain(ds.test.iter_mut())
        {
            if let Some(class) = self.relabelled.get(&rel(&s.path)) {
                s.label = ds.classes.id(class).ok_or_else(|| Error::UnknownClass {
                    path: view_path(&root),
                    file: s.path.clone(),
                    class: class.clone(),
                })?;
            }
        }
        Ok(())
    }
}
