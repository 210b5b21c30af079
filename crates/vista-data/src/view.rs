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
use crate::fsutil::write_atomic;
use crate::source::{Dataset, Sample};

/// The file name of the view at a dataset's root.
pub const VIEW_FILE: &str = "vista-clean.json";

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
    pub fn is_empty(&self) -> bool {
        self.excluded.is_empty() && self.relabelled.is_empty()
    }

    /// The view of the dataset at `dataset`, if it has one.
    pub fn read(dataset: &Path) -> Result<Option<CleanView>> {
        let path = view_path(dataset);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Json { path, source })
    }

    /// Writes the view atomically; a view already there is kept as
    /// `vista-clean.prev.json`.
    pub fn write(&self, dataset: &Path) -> Result<PathBuf> {
        let path = view_path(dataset);
        if path.exists() {
            let prev = path.with_file_name("vista-clean.prev.json");
            std::fs::copy(&path, &prev).map_err(io_err(&prev))?;
        }
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
        if !path.exists() {
            return Ok(false);
        }
        let undone = path.with_file_name("vista-clean.undone.json");
        std::fs::rename(&path, &undone).map_err(io_err(&path))?;
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
        ds.test.retain(keep);
        ds.unlabelled.retain(|p| !excluded.contains(&rel(p)));
        // A removed image a CSV still names is not a missing file: it was moved on
        // purpose (to the review's quarantine).
        ds.problems.retain(|p| !excluded.contains(&rel(&p.path)));
        for s in ds.train.iter_mut().chain(ds.test.iter_mut()) {
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
