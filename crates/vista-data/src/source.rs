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

fn has_extension(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Names the folder walker skips without a word, wherever they are: litter that file
/// managers and archivers leave (Windows' thumbnail cache and folder settings, the
/// `__MACOSX` folder of zip files made on a Mac), never a dataset's content. Hidden
/// entries, whose name starts with `.` (`.DS_Store`, `._photo.jpg`, `.ipynb_checkpoints`),
/// are skipped as well. Compared case-insensitively.
pub const IGNORED_NAMES: [&str; 3] = ["Thumbs.db", "desktop.ini", "__MACOSX"];

/// vista's own files, skipped beside the class folders: the class list, the files
/// `vista gan sample` writes beside its class folders, and the predictions `vista submit
/// --format folders` writes beside its own. The cleaned view (`vista-clean*.json`, see
/// [`VIEW_FILE`](crate::VIEW_FILE)) is skipped there too.
pub const OWN_FILES: [&str; 4] = [
    "classes.txt",
    vista_format::SYNTHETIC_MANIFEST,
    vista_format::CONSISTENCY_FILE,
    "predictions.csv",
];

/// True for entries the walker skips: hidden and [`IGNORED_NAMES`] everywhere, and
/// [`OWN_FILES`] and `vista-clean*.json` beside the class folders (`beside_classes`).
fn is_ignored(name: &OsStr, beside_classes: bool) -> bool {
    if name.as_encoded_bytes().starts_with(b".") {
        return true;
    }
    let Some(name) = name.to_str() else {
        return false;
    };
    if IGNORED_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        return true;
    }
    beside_classes
        && (OWN_FILES.contains(&name)
            || (name.starts_with("vista-clean") && name.ends_with(".json")))
}

/// Any folder directly inside `dir` that the walker would read.
fn has_subdirs(dir: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if !is_ignored(&entry.file_name(), true) && entry.path().is_dir() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A root of split folders: a `train` folder of class folders beside a validation or test
/// folder. (A class really named `train` beside one named `test` would be read as splits:
/// such a dataset can name its files in a CSV.)
fn is_split_root(dir: &Path) -> Result<bool> {
    let train = dir.join("train");
    if !train.is_dir() || !has_subdirs(&train)? {
        return Ok(false);
    }
    Ok(VALID_DIRS
        .iter()
        .chain(&["test"])
        .any(|name| dir.join(name).is_dir()))
}

/// The canonical form of a dataset's root, against which symbolic links are checked.
fn canonical_root(root: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(root).map_err(io_err(root))
}

/// What one folder holds, as the walker found it: regular files and folders, each sorted
/// by name, and every entry that is neither (or leads outside the root) already reported.
#[derive(Debug, Default)]
struct Listing {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// Lists `dir`, one level deep, for a dataset whose canonical root is `root`.
///
/// Symbolic links: a link whose target resolves inside the root is followed (listed as
/// the file or folder it leads to, under the link's own path); one that resolves outside
/// it is reported as [`ProblemKind::OutsideRoot`] and never read, and a broken or looping
/// link as [`ProblemKind::Unreadable`]. The walker never descends further than the
/// layout's fixed depth (`<root>/<class>/<image>`), so a link that makes a loop of
/// folders cannot make it run forever. Entries that are neither files nor folders
/// (FIFOs, sockets, devices) are reported and never opened.
fn list_dir(
    dir: &Path,
    root: &Path,
    beside_classes: bool,
    problems: &mut Vec<Problem>,
) -> std::io::Result<Listing> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !is_ignored(&entry.file_name(), beside_classes) {
            entries.push(entry);
        }
    }
    entries.sort_by_key(|e| e.file_name());
    let mut listing = Listing::default();
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().and_then(|t| {
            if !t.is_symlink() {
                return Ok(Ok(t));
            }
            let target = std::fs::canonicalize(&path)?;
            if !target.starts_with(root) {
                return Ok(Err(target));
            }
            Ok(Ok(std::fs::metadata(&target)?.file_type()))
        });
        match kind {
            Ok(Ok(t)) if t.is_file() => listing.files.push(path),
            Ok(Ok(t)) if t.is_dir() => listing.dirs.push(path),
            Ok(Ok(_)) => problems.push(Problem {
                path,
                kind: ProblemKind::Unreadable {
                    detail: "neither a file nor a folder".into(),
                },
            }),
            Ok(Err(target)) => problems.push(Problem {
                path,
                kind: ProblemKind::OutsideRoot { target },
            }),
            Err(e) => problems.push(Problem {
                path,
                kind: ProblemKind::Unreadable {
                    detail: format!("cannot follow: {e}"),
                },
            }),
        }
    }
    Ok(listing)
}

/// True when `dir` resolves inside `root`; otherwise reports it (a structural folder of
/// the layout, such as `seg_train`, that is a link to elsewhere).
fn inside_root(dir: &Path, root: &Path, problems: &mut Vec<Problem>) -> Result<bool> {
    let target = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    if target.starts_with(root) {
        return Ok(true);
    }
    problems.push(Problem {
        path: dir.into(),
        kind: ProblemKind::OutsideRoot { target },
    });
    Ok(false)
}

/// The images directly inside `dir` (a class folder, or Kaggle's `seg_pred`); anything
/// else in it is reported: files of other formats, folders, and the folder itself when
/// it cannot be read.
fn folder_images(dir: &Path, root: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let listing = match list_dir(dir, root, false, problems) {
        Ok(listing) => listing,
        Err(e) => {
            problems.push(Problem {
                path: dir.into(),
                kind: ProblemKind::Unreadable {
                    detail: e.to_string(),
                },
            });
            return Vec::new();
        }
    };
    for sub in listing.dirs {
        problems.push(Problem {
            path: sub,
            kind: ProblemKind::Unplaced,
        });
    }
    let mut images = Vec::new();
    for file in listing.files {
        if has_extension(&file, &IMAGE_EXTENSIONS) {
            images.push(file);
        } else {
            let extension = file
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            problems.push(Problem {
                path: file,
                kind: ProblemKind::UnsupportedFormat { extension },
            });
        }
    }
    images
}

/// The class folders directly inside `dir`, by name, sorted. Files beside them and
/// folders whose names cannot be class names are reported.
fn class_folders(
    dir: &Path,
    root: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Vec<(String, PathBuf)>> {
    let listing = list_dir(dir, root, true, problems).map_err(io_err(dir))?;
    for file in listing.files {
        problems.push(Problem {
            path: file,
            kind: ProblemKind::Unplaced,
        });
    }
    let mut classes = Vec::new();
    for path in listing.dirs {
        let os_name = path.file_name().unwrap_or_default();
        // The raw name stays in the problem's path; the class name must be text, since
        // it is saved with every run and becomes folder names downstream.
        let checked = os_name
            .to_str()
            .ok_or_else(|| "is not valid UTF-8".to_owned())
            .and_then(|name| {
                check_class_name(name)
                    .map(|()| name.to_owned())
                    .map_err(|why| why.to_string())
            });
        match checked {
            Ok(name) => classes.push((name, path)),
            Err(reason) => problems.push(Problem {
                kind: ProblemKind::BadClassFolder {
                    name: os_name.to_string_lossy().into_owned(),
                    reason,
                },
                path,
            }),
        }
    }
    Ok(classes)
}

/// How deep [`find_images`] walks below the folder it is given.
pub const MAX_FIND_DEPTH: usize = 32;

/// The images to predict at `path`: the file itself when it is one, else every image in
/// the folder and its subfolders (up to [`MAX_FIND_DEPTH`] deep), sorted by path. The
/// walk is the dataset walker's: hidden and litter entries are skipped, links are
/// followed only inside the folder (each folder walked once), and files of other formats and unreadable entries
/// come back as problems, never dropped without a word.
pub fn find_images(path: &Path) -> Result<(Vec<PathBuf>, Vec<Problem>)> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let mut problems = Vec::new();
    if meta.is_file() {
        if !has_extension(path, &IMAGE_EXTENSIONS) {
            let extension = (path.extension())
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            problems.push(Problem {
                path: path.into(),
                kind: ProblemKind::UnsupportedFormat { extension },
            });
            return Ok((Vec::new(), problems));
        }
        return Ok((vec![path.into()], problems));
    }
    let root = canonical_root(path)?;
    let mut images = Vec::new();
    let mut pending = vec![(path.to_path_buf(), 0usize)];
    // A link to a folder already walked (a loop, or two links to one place) is walked once.
    let mut seen = std::collections::HashSet::new();
    while let Some((dir, depth)) = pending.pop() {
        if let Ok(real) = std::fs::canonicalize(&dir)
            && !seen.insert(real)
        {
            continue;
        }
        let listing = match list_dir(&dir, &root, false, &mut problems) {
            Ok(listing) => listing,
            Err(e) => {
                problems.push(Problem {
                    path: dir,
                    kind: ProblemKind::Unreadable {
                        detail: e.to_string(),
                    },
                });
                continue;
            }
        };
        for file in listing.files {
            if has_extension(&file, &IMAGE_EXTENSIONS) {
                images.push(file);
            } else if !is_ignored(file.file_name().unwrap_or_default(), true) {
                let extension = (file.extension())
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                problems.push(Problem {
                    path: file,
                    kind: ProblemKind::UnsupportedFormat { extension },
                });
            }
        }
        for sub in listing.dirs {
            if depth + 1 > MAX_FIND_DEPTH {
                problems.push(Problem {
                    path: sub,
                    kind: ProblemKind::Unplaced,
                });
            } else {
                pending.push((sub, depth + 1));
            }
        }
    }
    images.sort();
    Ok((images, problems))
}

/// The samples of the class folders `folders`, labelled through `classes`. A class of the
/// map without a folder or without images is reported as empty, a folder of a class not
/// in the map as unknown (the test split of a layout takes the training split's classes).
fn class_samples(
    dir: &Path,
    folders: &[(String, PathBuf)],
    classes: &ClassMap,
    root: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut found = vec![false; classes.len()];
    for (name, path) in folders {
        let Some(label) = classes.id(name) else {
            problems.push(Problem {
                path: path.clone(),
                kind: ProblemKind::UnknownClassFolder {
                    class: name.clone(),
                },
            });
            continue;
        };
        let images = folder_images(path, root, problems);
        found[label as usize] = !images.is_empty();
        samples.extend(images.into_iter().map(|path| Sample { path, label }));
    }
    for (class, found) in classes.classes.iter().zip(found) {
        if !found {
            problems.push(Problem {
                path: dir.join(class),
                kind: ProblemKind::EmptyClass {
                    class: class.clone(),
                },
            });
        }
    }
    samples
}

/// The class map of a split's class folders, in their sorted order.
fn folder_class_map(folders: &[(String, PathBuf)], dir: &Path) -> Result<ClassMap> {
    ClassMap::checked(folders.iter().map(|(n, _)| n.clone()).collect(), dir)
}

fn open_image_folder(root: &Path) -> Result<Dataset> {
    let real_root = canonical_root(root)?;
    let mut problems = Vec::new();
    let folders = class_folders(root, &real_root, &mut problems)?;
    let classes = folder_class_map(&folders, root)?;
    let train = class_samples(root, &folders, &classes, &real_root, &mut problems);
    Ok(Dataset {
        root: root.into(),
        layout: Layout::ImageFolder,
        classes,
        train,
        valid: Vec::new(),
        test: Vec::new(),
        unlabelled: Vec::new(),
        problems,
        view: None,
    })
}

fn open_split_folders(root: &Path) -> Result<Dataset> {
    let real_root = canonical_root(root)?;
    let mut problems = Vec::new();
    // What else lies beside the splits is not read, and says so.
    let listing = list_dir(root, &real_root, true, &mut problems).map_err(io_err(root))?;
    for path in listing.files.into_iter().chain(listing.dirs) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !SPLIT_DIRS.contains(&name) {
            problems.push(Problem {
                path,
                kind: ProblemKind::Unplaced,
            });
        }
    }
    let train_dir = root.join("train");
    let folders = if inside_root(&train_dir, &real_root, &mut problems)? {
        class_folders(&train_dir, &real_root, &mut problems)?
    } else {
        Vec::new()
    };
    let classes = folder_class_map(&folders, &train_dir)?;
    let train = class_samples(&train_dir, &folders, &classes, &real_root, &mut problems);
    let labelled_split = |dir: &Path, problems: &mut Vec<Problem>| -> Result<Vec<Sample>> {
        if !inside_root(dir, &real_root, problems)? {
            return Ok(Vec::new());
        }
        let folders = class_folders(dir, &real_root, problems)?;
        Ok(class_samples(dir, &folders, &classes, &real_root, problems))
    };
    let valid_dirs: Vec<PathBuf> = VALID_DIRS
        .iter()
        .map(|name| root.join(name))
        .filter(|dir| dir.is_dir())
        .collect();
    // Two validation folders: the first is read, the others are not and say so.
    for extra in valid_dirs.iter().skip(1) {
        problems.push(Problem {
            path: extra.clone(),
            kind: ProblemKind::Unplaced,
        });
    }
    let valid = match valid_dirs.first() {
        Some(dir) => labelled_split(dir, &mut problems)?,
        None => Vec::new(),
    };
    let test_dir = root.join("test");
    let (mut test, mut unlabelled) = (Vec::new(), Vec::new());
    if test_dir.is_dir() {
        if has_subdirs(&test_dir)? {
            test = labelled_split(&test_dir, &mut problems)?;
        } else if inside_root(&test_dir, &real_root, &mut problems)? {
            unlabelled = folder_images(&test_dir, &real_root, &mut problems);
        }
    }
    Ok(Dataset {
        root: root.into(),
        layout: Layout::SplitFolders,
        classes,
        train,
        valid,
        test,
        unlabelled,
        problems,
        view: None,
    })
}

/// `root/name/name` when Kaggle's doubled folder is there, else `root/name`.
fn kaggle_dir(root: &Path, name: &str) -> PathBuf {
    let nested = root.join(name).join(name);
    if nested.is_dir() {
        nested
    } else {
        root.join(name)
    }
}

fn open_kaggle(root: &Path) -> Result<Dataset> {
    let real_root = canonical_root(root)?;
    let mut problems = Vec::new();
    let train_dir = kaggle_dir(root, "seg_train");
    let folders = if inside_root(&train_dir, &real_root, &mut problems)? {
        class_folders(&train_dir, &real_root, &mut problems)?
    } else {
        Vec::new()
    };
    let classes = folder_class_map(&folders, &train_dir)?;
    let train = class_samples(&train_dir, &folders, &classes, &real_root, &mut problems);
    let test_dir = kaggle_dir(root, "seg_test");
    let test = if test_dir.is_dir() && inside_root(&test_dir, &real_root, &mut problems)? {
        let folders = class_folders(&test_dir, &real_root, &mut problems)?;
        class_samples(&test_dir, &folders, &classes, &real_root, &mut problems)
    } else {
        Vec::new()
    };
    let pred_dir = kaggle_dir(root, "seg_pred");
    let unlabelled = if pred_dir.is_dir() && inside_root(&pred_dir, &real_root, &mut problems)? {
        folder_images(&pred_dir, &real_root, &mut problems)
    } else {
        Vec::new()
    };
    Ok(Dataset {
        root: root.into(),
        layout: Layout::KaggleIntel,
        classes,
        train,
        valid: Vec::new(),
        test,
        unlabelled,
        problems,
        view: None,
    })
}

/// The largest CSV file a layout reads (`train.csv`, `test.csv`, a path CSV): 256 MiB,
/// some four million rows of 64 bytes, far beyond any labelled image dataset's list.
pub const MAX_CSV_BYTES: u64 = 256 << 20;

/// One data row of a dataset CSV, as parsed from its bytes: nothing on disk was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// The row's number among the data rows, from 1 (the header is not counted).
    pub row: usize,
    /// The file the row names, as written in its cell (any bytes, on Unix).
    pub file: PathBuf,
    /// The label cell, when a label column was asked for; empty when the row is short.
    pub label: Option<String>,
    /// The split the row's split column puts it in, when one was asked for.
    pub split: Option<RowSplit>,
}

/// The split a CSV row belongs to, from an `is_valid` column (`true`/`1`/`yes` is valid,
/// `false`/`0`/`no` or empty is train, as fastai's `valid_col`) or a `split` column
/// (`train`, `valid`/`val`/`validation`, `test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSplit {
    /// A training image.
    Train,
    /// An image of the validation set.
    Valid,
    /// A labelled held-out image.
    Test,
}

impl RowSplit {
    /// Reads a split cell (case-insensitively); `None` for a word that names no split.
    pub fn parse(cell: &str) -> Option<Self> {
        let cell = cell.trim().to_ascii_lowercase();
        Some(match cell.as_str() {
            "" | "0" | "false" | "no" | "train" | "training" => Self::Train,
            "1" | "true" | "yes" | "valid" | "val" | "validation" | "dev" => Self::Valid,
            "test" | "holdout" => Self::Test,
            _ => return None,
        })
    }
}

/// The columns a dataset CSV is read by (names matched case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    /// The column naming each image file.
    pub file: String,
    /// The column of class names, if one is read.
    pub label: Option<String>,
    /// The column saying which split a row is in ([`RowSplit`]), if one is read.
    pub split: Option<String>,
}

impl CsvColumns {
    /// A file column and a label column.
    pub fn new(file: &str, label: Option<&str>) -> Self {
        Self {
            file: file.into(),
            label: label.map(Into::into),
            split: None,
        }
    }
}

/// Header names a path CSV's file column goes by, looked for in this order.
pub const FILE_COLUMNS: [&str; 8] = [
    "path",
    "file",
    "filename",
    "fname",
    "image",
    "image_path",
    "image_name",
    "image_id",
];
/// Header names a path CSV's label column goes by, looked for in this order.
pub const LABEL_COLUMNS: [&str; 5] = ["label", "class", "category", "target", "labels"];
/// Header names a path CSV's split column goes by, looked for in this order.
pub const SPLIT_COLUMNS: [&str; 3] = ["is_valid", "split", "valid"];

/// Parses a dataset CSV held in memory: a header row that names `file_column` (and
/// `label_column`, if given; matched case-insensitively, cells trimmed), then one row
/// per image, of any length. The file is read as bytes, so one row that is not UTF-8
/// costs that row, not the dataset: a label that is not UTF-8 is reported as
/// [`ProblemKind::BadLabel`], an empty file cell as [`ProblemKind::MissingFile`], a file
/// cell that cannot be a path here as [`ProblemKind::BadRow`]. `csv` names the file in
/// the problems and errors; `image_dir` is where the files named are (a problem's path
/// is the file a row names). Fails only when a needed column is missing.
pub fn parse_dataset_csv(
    bytes: &[u8],
    csv: &Path,
    image_dir: &Path,
    columns: &CsvColumns,
) -> Result<(Vec<CsvRow>, Vec<Problem>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .byte_headers()
        .map_err(|source| Error::Csv {
            path: csv.into(),
            source,
        })?
        .clone();
    let file_col = column(&header, csv, &columns.file)?;
    let label_col = (columns.label.as_deref())
        .map(|name| column(&header, csv, name))
        .transpose()?;
    let split_col = (columns.split.as_deref())
        .map(|name| column(&header, csv, name))
        .transpose()?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut row = 0;
    loop {
        row += 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // Reading from memory, only a malformed record can fail, and the reader
                // has moved past it; an I/O error would repeat, so it ends the file.
                let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                problems.push(Problem {
                    path: csv.into(),
                    kind: ProblemKind::BadRow {
                        csv: csv.into(),
                        row,
                        detail: e.to_string(),
                    },
                });
                if io {
                    break;
                }
                continue;
            }
        }
        let cell = record.get(file_col).unwrap_or_default();
        let Some(file) = path_from_bytes(cell) else {
            problems.push(Problem {
                path: csv.into(),
                kind: ProblemKind::BadRow {
                    csv: csv.into(),
                    row,
                    detail: "the file name is not valid UTF-8".into(),
                },
            });
            continue;
        };
        let path = lexical_clean(&image_dir.join(&file));
        if cell.is_empty() {
            problems.push(Problem {
                path,
                kind: ProblemKind::MissingFile {
                    csv: csv.into(),
                    row,
                },
            });
            continue;
        }
        let label = match label_col {
            None => None,
            Some(col) => {
                let cell = record.get(col).unwrap_or_default();
                match std::str::from_utf8(cell) {
                    Ok(label) => Some(label.to_owned()),
                    Err(_) => {
                        problems.push(Problem {
                            path,
                            kind: ProblemKind::BadLabel {
                                csv: csv.into(),
                                row,
                                label: String::from_utf8_lossy(cell).into_owned(),
                                reason: "is not valid UTF-8".into(),
                            },
                        });
                        continue;
                    }
                }
            }
        };
        let split = match split_col {
            None => None,
            Some(col) => {
                let cell = String::from_utf8_lossy(record.get(col).unwrap_or_default());
                match RowSplit::parse(&cell) {
                    Some(split) => Some(split),
                    None => {
                        problems.push(Problem {
                            path: csv.into(),
                            kind: ProblemKind::BadRow {
                                csv: csv.into(),
                                row,
                                detail: format!(
                                    "split `{}` is none of train, valid, test, true, false",
                                    cell.chars().take(40).collect::<String>()
                                ),
                            },
                        });
                        continue;
                    }
                }
            }
        };
        rows.push(CsvRow {
            row,
            file,
            label,
            split,
        });
    }
    Ok((rows, problems))
}

/// A CSV cell as a path: its bytes as they are on Unix, where a path is bytes; elsewhere
/// it must be UTF-8.
#[cfg(unix)]
fn path_from_bytes(cell: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(OsStr::from_bytes(cell).into())
}

#[cfg(not(unix))]
fn path_from_bytes(cell: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(cell).ok().map(PathBuf::from)
}

/// Reads and parses a dataset CSV (see [`parse_dataset_csv`]), at most [`MAX_CSV_BYTES`].
fn read_csv(
    path: &Path,
    image_dir: &Path,
    columns: &CsvColumns,
    problems: &mut Vec<Problem>,
) -> Result<Vec<CsvRow>> {
    let bytes = vista_format::read_limited(path, MAX_CSV_BYTES)?;
    let (rows, found) = parse_dataset_csv(&bytes, path, image_dir, columns)?;
    problems.extend(found);
    Ok(rows)
}

/// The columns of a path CSV: the first of [`FILE_COLUMNS`], [`LABEL_COLUMNS`] and
/// [`SPLIT_COLUMNS`] its header has (`path` and `label` when it has none, so the error
/// names them).
pub fn detect_columns(bytes: &[u8]) -> CsvColumns {
    let header = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes)
        .byte_headers()
        .cloned()
        .unwrap_or_default();
    let find = |names: &[&str]| {
        names
            .iter()
            .find(|n| header.iter().any(|h| h.eq_ignore_ascii_case(n.as_bytes())))
            .map(|n| n.to_string())
    };
    CsvColumns {
        file: find(&FILE_COLUMNS).unwrap_or_else(|| "path".into()),
        label: Some(find(&LABEL_COLUMNS).unwrap_or_else(|| "label".into())),
        split: find(&SPLIT_COLUMNS),
    }
}

fn column(header: &csv::ByteRecord, path: &Path, name: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h.eq_ignore_ascii_case(name.as_bytes()))
        .ok_or_else(|| Error::MissingColumn {
            path: path.into(),
            column: name.into(),
            header: header
                .iter()
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(","),
        })
}

/// Why a label cell gives no class id.
enum LabelIssue {
    /// Not in the class map: [`ProblemKind::UnknownLabel`].
    Unknown,
    /// Cannot be a class name at all: [`ProblemKind::BadLabel`] with this reason.
    Bad(String),
}

/// Turns CSV rows into samples, reporting duplicates, missing files, files outside
/// `inside` (a canonical root, when the layout keeps its images under one) and labels
/// that give no class. `label_of` maps a label cell to a class id.
fn csv_samples(
    csv_path: &Path,
    rows: &[CsvRow],
    image_dir: &Path,
    inside: Option<&Path>,
    label_of: &dyn Fn(&str) -> std::result::Result<u32, LabelIssue>,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, Option<u32>, RowSplit)> {
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    let mut out = Vec::new();
    for CsvRow {
        row,
        file,
        label,
        split,
    } in rows
    {
        let path = lexical_clean(&image_dir.join(file));
        if let Some(&first_row) = seen.get(&path) {
            problems.push(Problem {
                path,
                kind: ProblemKind::Duplicate {
                    csv: csv_path.into(),
                    row: *row,
                    first_row,
                },
            });
            continue;
        }
        seen.insert(path.clone(), *row);
        if !path.is_file() {
            problems.push(Problem {
                path,
                kind: ProblemKind::MissingFile {
                    csv: csv_path.into(),
                    row: *row,
                },
            });
            continue;
        }
        if let Some(root) = inside {
            match std::fs::canonicalize(&path) {
                Ok(target) if target.starts_with(root) => {}
                Ok(target) => {
                    problems.push(Problem {
                        path,
                        kind: ProblemKind::OutsideRoot { target },
                    });
                    continue;
                }
                Err(e) => {
                    problems.push(Problem {
                        path,
                        kind: ProblemKind::Unreadable {
                            detail: format!("cannot follow: {e}"),
                        },
                    });
                    continue;
                }
            }
        }
        let label = match label {
            None => None,
            Some(cell) => match label_of(cell) {
                Ok(id) => Some(id),
                Err(issue) => {
                    let kind = match issue {
                        LabelIssue::Unknown => ProblemKind::UnknownLabel {
                            csv: csv_path.into(),
                            row: *row,
                            label: cell.clone(),
                        },
                        LabelIssue::Bad(reason) => ProblemKind::BadLabel {
                            csv: csv_path.into(),
                            row: *row,
                            label: cell.clone(),
                            reason,
                        },
                    };
                    problems.push(Problem { path, kind });
                    continue;
                }
            },
        };
        out.push((path, label, split.unwrap_or(RowSplit::Train)));
    }
    out
}

/// Resolves `.` and `..` components without touching the file system, so problem
/// reports name `data/a.jpg` rather than `data/csv/../a.jpg`.
fn lexical_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The labelled items of split `want`.
fn labelled(items: &[(PathBuf, Option<u32>, RowSplit)], want: RowSplit) -> Vec<Sample> {
    (items.iter())
        .filter(|(_, _, split)| *split == want)
        .filter_map(|(path, label, _)| {
            label.map(|label| Sample {
                path: path.clone(),
                label,
            })
        })
        .collect()
}

fn open_analytics_vidhya(root: &Path) -> Result<Dataset> {
    let real_root = canonical_root(root)?;
    let classes_txt = root.join("classes.txt");
    let classes = if classes_txt.is_file() {
        ClassMap::read_txt(&classes_txt)?
    } else {
        ClassMap::intel()
    };
    let image_dir = ["images", "train"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| root.into());
    let n_classes = classes.len() as u32;
    let label_of = move |cell: &str| {
        cell.parse::<u32>()
            .ok()
            .filter(|&id| id < n_classes)
            .ok_or(LabelIssue::Unknown)
    };

    let mut problems = Vec::new();
    let train_csv = root.join("train.csv");
    let rows = read_csv(
        &train_csv,
        &image_dir,
        &CsvColumns::new("image_name", Some("label")),
        &mut problems,
    )?;
    let train = labelled(
        &csv_samples(
            &train_csv,
            &rows,
            &image_dir,
            Some(&real_root),
            &label_of,
            &mut problems,
        ),
        RowSplit::Train,
    );

    let test_csv = root.join("test.csv");
    let unlabelled = if test_csv.is_file() {
        let columns = CsvColumns::new("image_name", None);
        let rows = read_csv(&test_csv, &image_dir, &columns, &mut problems)?;
        csv_samples(
            &test_csv,
            &rows,
            &image_dir,
            Some(&real_root),
            &label_of,
            &mut problems,
        )
        .into_iter()
        .map(|(p, _, _)| p)
        .collect()
    } else {
        Vec::new()
    };
    Ok(Dataset {
        root: root.into(),
        layout: Layout::AnalyticsVidhya,
        classes,
        train,
        valid: Vec::new(),
        test: Vec::new(),
        unlabelled,
        problems,
        view: None,
    })
}

fn open_path_csv(csv_path: &Path) -> Result<Dataset> {
    let dir = csv_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let bytes = vista_format::read_limited(csv_path, MAX_CSV_BYTES)?;
    let columns = detect_columns(&bytes);
    let (rows, found) = parse_dataset_csv(&bytes, csv_path, dir, &columns)?;
    problems.extend(found);
    let classes_txt = dir.join("classes.txt");
    let classes = if classes_txt.is_file() {
        ClassMap::read_txt(&classes_txt)?
    } else {
        // Labels become the class names, so only those that can be are; the rows of the
        // others are reported below.
        let mut names: Vec<String> = rows
            .iter()
            .filter_map(|r| r.label.as_deref())
            .filter(|l| check_class_name(l).is_ok())
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        ClassMap::checked(names, csv_path)?
    };
    let label_of = |cell: &str| match classes.id(cell) {
        Some(id) => Ok(id),
        None => match check_class_name(cell) {
            Err(why) => Err(LabelIssue::Bad(why.to_string())),
            Ok(()) => Err(LabelIssue::Unknown),
        },
    };
    // One pass over every row, so a file named in two splits is a duplicate.
    let items = csv_samples(csv_path, &rows, dir, None, &label_of, &mut problems);
    let train = labelled(&items, RowSplit::Train);
    let valid = labelled(&items, RowSplit::Valid);
    let test = labelled(&items, RowSplit::Test);
    Ok(Dataset {
        root: csv_path.into(),
        layout: Layout::PathCsv,
        classes,
        train,
        valid,
        test,
        unlabelled: Vec::new(),
        problems,
        view: None,
    })
}
