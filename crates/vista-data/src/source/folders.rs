//! The folder layouts: an image folder, split folders and Kaggle's Intel download.

use super::*;

pub(super) fn open_image_folder(root: &Path) -> Result<Dataset> {
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

pub(super) fn open_split_folders(root: &Path) -> Result<Dataset> {
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
    let (classes, train) = train_split(&train_dir, &real_root, &mut problems)?;
    let labelled_split = |dir: &Path, problems: &mut Vec<Problem>| -> Result<Vec<Sample>> {
        if !inside_root(dir, &real_root, problems)? {
            return Ok(Vec::new());
        }
        let folders = class_folders(dir, &real_root, problems)?;
        // A rare class may have no validation or test image (Roboflow's exports often
        // lack one): that is the data, not a problem of a file.
        let mut found = Vec::new();
        let samples = class_samples(dir, &folders, &classes, &real_root, &mut found);
        problems.extend(
            (found.into_iter()).filter(|p| !matches!(p.kind, ProblemKind::EmptyClass { .. })),
        );
        Ok(samples)
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
    if test_dir.is_dir() && inside_root(&test_dir, &real_root, &mut problems)? {
        if has_subdirs(&test_dir)? {
            test = labelled_split(&test_dir, &mut problems)?;
        } else {
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
pub(super) fn kaggle_dir(root: &Path, name: &str) -> PathBuf {
    let nested = root.join(name).join(name);
    if nested.is_dir() {
        nested
    } else {
        root.join(name)
    }
}

/// The classes (its class folders, sorted) and samples of a layout's training folder.
fn train_split(
    train_dir: &Path,
    real_root: &Path,
    problems: &mut Vec<Problem>,
) -> Result<(ClassMap, Vec<Sample>)> {
    let folders = if inside_root(train_dir, real_root, problems)? {
        class_folders(train_dir, real_root, problems)?
    } else {
        Vec::new()
    };
    let classes = folder_class_map(&folders, train_dir)?;
    let train = class_samples(train_dir, &folders, &classes, real_root, problems);
    Ok((classes, train))
}

pub(super) fn open_kaggle(root: &Path) -> Result<Dataset> {
    let real_root = canonical_root(root)?;
    let mut problems = Vec::new();
    let train_dir = kaggle_dir(root, "seg_train");
    let (classes, train) = train_split(&train_dir, &real_root, &mut problems)?;
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
