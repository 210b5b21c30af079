//! The folder walker every folder layout and `predict` use: one level at a time,
//! links followed only inside the dataset, litter skipped, everything else reported.

use super::*;

pub(super) fn has_extension(path: &Path, exts: &[&str]) -> bool {
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
pub(super) fn is_ignored(name: &OsStr, beside_classes: bool) -> bool {
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
pub(super) fn has_subdirs(dir: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if !is_ignored(&entry.file_name(), true) && entry.path().is_dir() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A root of split folders: a `train` folder of class folders beside a validation or test
/// folder, or alone. (A class really named `train` beside one named `test` would be read as splits:
/// such a dataset can name its files in a CSV.)
pub(super) fn is_split_root(dir: &Path) -> Result<bool> {
    let train = dir.join("train");
    if !train.is_dir() || !has_subdirs(&train)? {
        return Ok(false);
    }
    if (VALID_DIRS.iter().chain(&["test"])).any(|name| dir.join(name).is_dir()) {
        return Ok(true);
    }
    // `train/` alone: split folders when nothing beside it could be a class.
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if !is_ignored(&name, true) && entry.path().is_dir() && name != "train" {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The canonical form of a dataset's root, against which symbolic links are checked.
pub(super) fn canonical_root(root: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(root).map_err(io_err(root))
}

/// What one folder holds, as the walker found it: regular files and folders, each sorted
/// by name, and every entry that is neither (or leads outside the root) already reported.
#[derive(Debug, Default)]
pub(super) struct Listing {
    pub(super) files: Vec<PathBuf>,
    pub(super) dirs: Vec<PathBuf>,
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
pub(super) fn list_dir(
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
pub(super) fn inside_root(dir: &Path, root: &Path, problems: &mut Vec<Problem>) -> Result<bool> {
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
pub(super) fn folder_images(dir: &Path, root: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
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
pub(super) fn class_folders(
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

/// The most entries [`find_images`] looks at (files and folders): ten million, far
/// beyond a photo collection, short of walking a whole disk by mistake.
pub const MAX_FIND_ENTRIES: usize = 10_000_000;

/// The images to predict at `path`: the file itself when it is one, else every image in
/// the folder and its subfolders (up to [`MAX_FIND_DEPTH`] deep), sorted by path. The
/// walk is the dataset walker's: hidden and litter entries are skipped, links are
/// followed only inside the folder (each folder walked once), and files of other formats and unreadable entries
/// come back as problems, never dropped without a word.
pub fn find_images(path: &Path) -> Result<(Vec<PathBuf>, Vec<Problem>)> {
    find_images_within(path, MAX_FIND_ENTRIES)
}

/// [`find_images`] looking at no more than `max_entries` files and folders.
pub(crate) fn find_images_within(
    path: &Path,
    max_entries: usize,
) -> Result<(Vec<PathBuf>, Vec<Problem>)> {
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
    let mut entries = 0usize;
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
        entries += listing.files.len() + listing.dirs.len();
        if entries > max_entries {
            return Err(Error::TooManyEntries {
                path: path.into(),
                max: max_entries,
            });
        }
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
pub(super) fn class_samples(
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
pub(super) fn folder_class_map(folders: &[(String, PathBuf)], dir: &Path) -> Result<ClassMap> {
    ClassMap::checked(folders.iter().map(|(n, _)| n.clone()).collect(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_past_its_entry_limit_is_an_error_not_a_partial_list() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..4 {
            std::fs::write(dir.path().join(format!("{i}.png")), b"").unwrap();
        }
        let (found, _) = find_images_within(dir.path(), 4).unwrap();
        assert_eq!(found.len(), 4);
        let err = find_images_within(dir.path(), 3).unwrap_err();
        assert!(matches!(err, Error::TooManyEntries { max: 3, .. }), "{err}");
    }
}
