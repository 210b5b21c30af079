//! Dataset layouts: finding the (image path, class id) items of a folder or CSV file.
//!
//! A dataset is untrusted input. Listing it never panics and never fails on one bad
//! entry: each becomes a [`Problem`] naming it, and nothing is dropped without one.
//!
//! - Folders are walked to the layout's fixed depth only (`<root>/<class>/<image>`).
//!   Files there with an extension other than [`IMAGE_EXTENSIONS`] are
//!   [`ProblemKind::UnsupportedFormat`]; files beside the class folders and folders inside
//!   them are [`ProblemKind::Unplaced`]. Skipped without a word: hidden entries (`.name`),
//!   [`IGNORED_NAMES`] (`Thumbs.db`, `desktop.ini`, `__MACOSX`), and vista's own files
//!   beside the class folders ([`OWN_FILES`], `vista-clean*.json`).
//! - Paths stay `PathBuf`s, whatever their bytes. A class name is text that passes
//!   [`check_class_name`], since it is saved with runs and becomes folder names: a class
//!   folder whose name is not UTF-8 or fails the check is
//!   [`ProblemKind::BadClassFolder`], a CSV label that cannot be a class is
//!   [`ProblemKind::BadLabel`] for its row; `classes.txt` is checked by
//!   [`ClassMap::read_txt`].
//! - Symbolic links are followed when they resolve inside the dataset's root and are
//!   [`ProblemKind::OutsideRoot`] otherwise, never read (see `list_dir`). The rows of an
//!   Analytics Vidhya CSV must resolve inside its root too. A path CSV
//!   ([`Layout::PathCsv`]) names files relative to its folder, `..` included, so its
//!   files may be anywhere; each is still read with the size limits of
//!   [`decode_rgb`](crate::decode_rgb).
//! - CSV files are read whole up to [`MAX_CSV_BYTES`] (a larger one is
//!   [`Error::TooBig`]), as bytes: one row that is not UTF-8 is one problem.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::classes::ClassMap;
use crate::error::{Error, Result, io_err};
use crate::problem::{Problem, ProblemKind, ProblemReport};
use crate::view::CleanView;
use vista_format::check_class_name;

mod csv_layouts;
mod folders;
mod walk;

use self::csv_layouts::*;
pub use self::csv_layouts::{
    CsvColumns, CsvRow, FILE_COLUMNS, LABEL_COLUMNS, MAX_CSV_BYTES, RowSplit, SPLIT_COLUMNS,
    detect_columns, parse_dataset_csv,
};
use self::folders::*;
use self::walk::*;
pub use self::walk::{IGNORED_NAMES, MAX_FIND_DEPTH, MAX_FIND_ENTRIES, OWN_FILES, find_images};

/// File extensions read as images (compared case-insensitively): JPEG, PNG, WebP, BMP,
/// TIFF and GIF (its first frame). The format itself is found from the file's content.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif", "jfif",
];

/// The dataset layouts vista recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `root/<class>/*.{jpg,jpeg,png}`; class ids follow the sorted folder names (by
    /// their bytes).
    ImageFolder,
    /// Kaggle's Intel Image Classification download: `seg_train/seg_train/<class>/`,
    /// `seg_test/seg_test/<class>/`, `seg_pred/seg_pred/*.jpg` (the inner folder may be absent).
    KaggleIntel,
    /// Analytics Vidhya's Intel Scene Classification download: `train.csv`
    /// (`image_name,label` with ids 0..5), `test.csv` (`image_name`), images in `train/`
    /// or `images/`. A `classes.txt` (one name per line) overrides the Intel class names.
    AnalyticsVidhya,
    /// A CSV file of `path,label` (paths relative to the CSV's folder, labels are class
    /// names). A `classes.txt` beside it fixes the classes and their order; without one,
    /// the classes are the sorted distinct labels.
    PathCsv,
    /// One folder per split, each of class folders, as fastai's `from_folder(train=,
    /// valid=)`, torchvision's per-split `ImageFolder`, imagenette and Roboflow's exports
    /// have it: `train/<class>/`, `valid/<class>/` (or `val/`, `validation/`) as the
    /// validation set, and `test/<class>/` as labelled held-out images (`test/*.jpg`
    /// without class folders: images to predict). The classes are `train`'s.
    SplitFolders,
}

/// Folder names of the validation split in a [`Layout::SplitFolders`] dataset, in the
/// order they are looked for.
pub const VALID_DIRS: [&str; 3] = ["valid", "val", "validation"];

/// The folder names a [`Layout::SplitFolders`] dataset's root may hold.
const SPLIT_DIRS: [&str; 5] = ["train", "valid", "val", "validation", "test"];

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::ImageFolder => "image folder (root/<class>/*.jpg)",
            Layout::KaggleIntel => "Kaggle Intel (seg_train/seg_test/seg_pred)",
            Layout::AnalyticsVidhya => "Analytics Vidhya (train.csv + test.csv + images)",
            Layout::PathCsv => "CSV of path,label",
            Layout::SplitFolders => "split folders (train/, valid/ or val/, test/)",
        })
    }
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sample {
    /// The image file: the dataset's location joined with the image's place in it.
    pub path: PathBuf,
    /// The image's class id, an index into the dataset's [`ClassMap`].
    pub label: u32,
}

/// A dataset as found on disk, before any image is decoded.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The path the dataset was opened from: its folder, or the CSV file of a
    /// [`Layout::PathCsv`] dataset.
    pub root: PathBuf,
    /// The layout detected on disk.
    pub layout: Layout,
    /// The class names, in label-id order.
    pub classes: ClassMap,
    /// Labelled training images.
    pub train: Vec<Sample>,
    /// The dataset's own validation set (a `valid/` folder, a CSV's `is_valid` rows);
    /// empty when the layout has none, and then a run splits one off `train`.
    pub valid: Vec<Sample>,
    /// Labelled held-out images (Kaggle's `seg_test`); empty when the layout has none.
    pub test: Vec<Sample>,
    /// Images to predict, without labels (Kaggle's `seg_pred`, Analytics Vidhya's `test.csv`).
    pub unlabelled: Vec<PathBuf>,
    /// Problems found while listing the files (missing files, unknown labels, ...).
    /// Problems inside image files are found when they are decoded.
    pub problems: Vec<Problem>,
    /// The cleaned view applied to the listing, if the dataset has one.
    pub view: Option<CleanView>,
}

impl Dataset {
    /// Drops every sample whose file has a problem in `report`. (Entries with listing
    /// problems, such as a duplicate CSV row, were never added.)
    pub fn without(mut self, report: &ProblemReport) -> Self {
        let bad: std::collections::HashSet<&Path> = report
            .problems
            .iter()
            .filter(|p| p.kind.is_in_file())
            .map(|p| p.path.as_path())
            .collect();
        self.train.retain(|s| !bad.contains(s.path.as_path()));
        self.valid.retain(|s| !bad.contains(s.path.as_path()));
        self.test.retain(|s| !bad.contains(s.path.as_path()));
        self.unlabelled.retain(|p| !bad.contains(p.as_path()));
        self
    }

    /// Number of samples of each class in `samples`, indexed by class id.
    pub fn class_counts(&self, samples: &[Sample]) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in samples {
            counts[s.label as usize] += 1;
        }
        counts
    }
}

/// Finds which layout `path` holds, without reading any image.
pub fn detect_layout(path: &Path) -> Result<Layout> {
    if path.is_file() {
        if has_extension(path, &["csv"]) {
            return Ok(Layout::PathCsv);
        }
        return Err(Error::UnknownLayout { path: path.into() });
    }
    if !path.is_dir() {
        return Err(Error::Io {
            path: path.into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        });
    }
    if path.join("seg_train").is_dir() {
        return Ok(Layout::KaggleIntel);
    }
    if path.join("train.csv").is_file() {
        return Ok(Layout::AnalyticsVidhya);
    }
    if is_split_root(path)? {
        return Ok(Layout::SplitFolders);
    }
    if has_subdirs(path)? {
        return Ok(Layout::ImageFolder);
    }
    Err(Error::UnknownLayout { path: path.into() })
}

/// Detects the layout of `path` and lists its samples and structural problems.
pub fn open(path: &Path) -> Result<Dataset> {
    let layout = detect_layout(path)?;
    let mut dataset = match layout {
        Layout::ImageFolder => open_image_folder(path)?,
        Layout::KaggleIntel => open_kaggle(path)?,
        Layout::AnalyticsVidhya => open_analytics_vidhya(path)?,
        Layout::PathCsv => open_path_csv(path)?,
        Layout::SplitFolders => open_split_folders(path)?,
    };
    // A cleaned view (`vista clean --apply`, `vista review --apply`) leaves images out
    // and corrects labels for every loader.
    if let Some(view) = CleanView::read(path)? {
        view.apply(&mut dataset)?;
        dataset.view = Some(view);
    }
    if dataset.train.is_empty() {
        if dataset.problems.is_empty() {
            return Err(Error::Empty { path: path.into() });
        }
        // The problems are the only explanation of an empty dataset; they go with the
        // error rather than being dropped.
        return Err(Error::EmptyWithProblems {
            path: path.into(),
            report: ProblemReport::new(dataset.problems),
        });
    }
    Ok(dataset)
}
