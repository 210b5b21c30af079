//! Dataset layouts: finding the (image path, class id) items of a folder or CSV file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::classes::ClassMap;
use crate::error::{Error, Result, io_err};
use crate::problem::{Problem, ProblemKind, ProblemReport};
use crate::view::CleanView;

/// File extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The dataset layouts vista recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `root/<class>/*.{jpg,jpeg,png}`; class ids follow the sorted folder names.
    ImageFolder,
    /// Kaggle's Intel Image Classification download: `seg_train/seg_train/<class>/`,
    /// `seg_test/seg_test/<class>/`, `seg_pred/seg_pred/*.jpg` (the inner folder may be absent).
    KaggleIntel,
    /// Analytics Vidhya's Intel Scene Classification download: `train.csv`
    /// (`image_name,label` with ids 0..5), `test.csv` (`image_name`), images in `train/`
    /// or `images/`. A `classes.txt` (one name per line) overrides the Intel class names.
    AnalyticsVidhya,
    /// A CSV file of `path,label` (paths relative to the CSV's folder, labels are class names).
    PathCsv,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::ImageFolder => "image folder (root/<class>/*.jpg)",
            Layout::KaggleIntel => "Kaggle Intel (seg_train/seg_test/seg_pred)",
            Layout::AnalyticsVidhya => "Analytics Vidhya (train.csv + test.csv + images)",
            Layout::PathCsv => "CSV of path,label",
        })
    }
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sample {
    pub path: PathBuf,
    pub label: u32,
}

/// A dataset as found on disk, before any image is decoded.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    pub layout: Layout,
    pub classes: ClassMap,
    /// Labelled training images.
    pub train: Vec<Sample>,
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
    if !subdirs(path)?.is_empty() {
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
    };
    // A cleaned view (`vista clean --apply`, `vista review --apply`) leaves images out
    // and corrects labels for every loader.
    if let Some(view) = CleanView::read(path)? {
        view.apply(&mut dataset)?;
        dataset.view = Some(view);
    }
    if dataset.train.is_empty() {
        return Err(Error::Empty { path: path.into() });
    }
    Ok(dataset)
}

fn has_extension(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if !is_hidden(&entry.path()) {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect())
}

/// Image files directly inside `dir`, sorted.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_file() && has_extension(p, &IMAGE_EXTENSIONS))
        .collect())
}

/// Reads `root/<class>/*` with the given class map; empty class folders become problems.
fn read_class_folders(
    root: &Path,
    classes: &ClassMap,
    problems: &mut Vec<Problem>,
) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (id, class) in classes.classes.iter().enumerate() {
        let dir = root.join(class);
        let files = if dir.is_dir() {
            image_files(&dir)?
        } else {
            Vec::new()
        };
        if files.is_empty() {
            problems.push(Problem {
                path: dir,
                kind: ProblemKind::EmptyClass {
                    class: class.clone(),
                },
            });
        }
        samples.extend(files.into_iter().map(|path| Sample {
            path,
            label: id as u32,
        }));
    }
    Ok(samples)
}

fn folder_classes(root: &Path) -> Result<ClassMap> {
    Ok(ClassMap::new(
        subdirs(root)?
            .iter()
            .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
    ))
}

fn open_image_folder(root: &Path) -> Result<Dataset> {
    let classes = folder_classes(root)?;
    let mut problems = Vec::new();
    let train = read_class_folders(root, &classes, &mut problems)?;
    Ok(Dataset {
        root: root.into(),
        layout: Layout::ImageFolder,
        classes,
        train,
        test: Vec::new(),
        unlabelled: Vec::new(),
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
    let train_dir = kaggle_dir(root, "seg_train");
    let classes = folder_classes(&train_dir)?;
    let mut problems = Vec::new();
    let train = read_class_folders(&train_dir, &classes, &mut problems)?;
    let test_dir = kaggle_dir(root, "seg_test");
    let test = if test_dir.is_dir() {
        read_class_folders(&test_dir, &classes, &mut problems)?
    } else {
        Vec::new()
    };
    let pred_dir = kaggle_dir(root, "seg_pred");
    let unlabelled = if pred_dir.is_dir() {
        image_files(&pred_dir)?
    } else {
        Vec::new()
    };
    Ok(Dataset {
        root: root.into(),
        layout: Layout::KaggleIntel,
        classes,
        train,
        test,
        unlabelled,
        problems,
        view: None,
    })
}

/// The rows of a CSV with a header, as (1-based data row number, record).
fn read_csv(path: &Path) -> Result<(csv::StringRecord, Vec<(usize, csv::StringRecord)>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|source| Error::Csv {
            path: path.into(),
            source,
        })?;
    let header = reader
        .headers()
        .map_err(|source| Error::Csv {
            path: path.into(),
            source,
        })?
        .clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|source| Error::Csv {
            path: path.into(),
            source,
        })?;
        rows.push((i + 1, record));
    }
    Ok((header, rows))
}

fn column(header: &csv::StringRecord, path: &Path, name: &'static str) -> Result<usize> {
    header
        .iter()
        .position(|h| h.eq_ignore_ascii_case(name))
        .ok_or_else(|| Error::MissingColumn {
            path: path.into(),
            column: name,
            header: header.iter().collect::<Vec<_>>().join(","),
        })
}

/// Turns CSV rows into samples, reporting missing files, unknown labels and duplicates.
/// `label_of` maps the label cell to a class id, or `None` when it is unknown.
fn csv_samples(
    csv_path: &Path,
    rows: &[(usize, csv::StringRecord)],
    file_col: usize,
    label_col: Option<usize>,
    image_dir: &Path,
    label_of: &dyn Fn(&str) -> Option<u32>,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, Option<u32>)> {
    let mut seen: HashMap<PathBuf, usize> = HashMap::new();
    let mut out = Vec::new();
    for (row, record) in rows {
        let name = record.get(file_col).unwrap_or("");
        let path = lexical_clean(&image_dir.join(name));
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
        if name.is_empty() || !path.is_file() {
            problems.push(Problem {
                path,
                kind: ProblemKind::MissingFile {
                    csv: csv_path.into(),
                    row: *row,
                },
            });
            continue;
        }
        let label = match label_col {
            None => None,
            Some(col) => {
                let cell = record.get(col).unwrap_or("");
                match label_of(cell) {
                    Some(id) => Some(id),
                    None => {
                        problems.push(Problem {
                            path,
                            kind: ProblemKind::UnknownLabel {
                                csv: csv_path.into(),
                                row: *row,
                                label: cell.into(),
                            },
                        });
                        continue;
                    }
                }
            }
        };
        out.push((path, label));
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

fn labelled(items: Vec<(PathBuf, Option<u32>)>) -> Vec<Sample> {
    items
        .into_iter()
        .filter_map(|(path, label)| label.map(|label| Sample { path, label }))
        .collect()
}

fn open_analytics_vidhya(root: &Path) -> Result<Dataset> {
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
    let label_of = move |cell: &str| cell.parse::<u32>().ok().filter(|&id| id < n_classes);

    let mut problems = Vec::new();
    let train_csv = root.join("train.csv");
    let (header, rows) = read_csv(&train_csv)?;
    let file_col = column(&header, &train_csv, "image_name")?;
    let label_col = column(&header, &train_csv, "label")?;
    let train = labelled(csv_samples(
        &train_csv,
        &rows,
        file_col,
        Some(label_col),
        &image_dir,
        &label_of,
        &mut problems,
    ));

    let test_csv = root.join("test.csv");
    let unlabelled = if test_csv.is_file() {
        let (header, rows) = read_csv(&test_csv)?;
        let file_col = column(&header, &test_csv, "image_name")?;
        csv_samples(
            &test_csv,
            &rows,
            file_col,
            None,
            &image_dir,
            &label_of,
            &mut problems,
        )
        .into_iter()
        .map(|(p, _)| p)
        .collect()
    } else {
        Vec::new()
    };
    Ok(Dataset {
        root: root.into(),
        layout: Layout::AnalyticsVidhya,
        classes,
        train,
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
    let (header, rows) = read_csv(csv_path)?;
    let file_col = column(&header, csv_path, "path")?;
    let label_col = column(&header, csv_path, "label")?;
    let classes_txt = dir.join("classes.txt");
    let classes = if classes_txt.is_file() {
        ClassMap::read_txt(&classes_txt)?
    } else {
        let mut names: Vec<String> = rows
            .iter()
            .filter_map(|(_, r)| r.get(label_col))
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        ClassMap::new(names)
    };
    let mut problems = Vec::new();
    let label_of = |cell: &str| classes.id(cell);
    let train = labelled(csv_samples(
        csv_path,
        &rows,
        file_col,
        Some(label_col),
        dir,
        &label_of,
        &mut problems,
    ));
    Ok(Dataset {
        root: csv_path.into(),
        layout: Layout::PathCsv,
        classes,
        train,
        test: Vec::new(),
        unlabelled: Vec::new(),
        problems,
        view: None,
    })
}
