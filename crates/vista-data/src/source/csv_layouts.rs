//! The CSV layouts: parsing a dataset CSV from its bytes, Analytics Vidhya's download
//! and a CSV of paths and labels.

use super::*;

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
pub(super) fn path_from_bytes(cell: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(OsStr::from_bytes(cell).into())
}

#[cfg(not(unix))]
pub(super) fn path_from_bytes(cell: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(cell).ok().map(PathBuf::from)
}

/// Reads and parses a dataset CSV (see [`parse_dataset_csv`]), at most [`MAX_CSV_BYTES`].
pub(super) fn read_csv(
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

pub(super) fn column(header: &csv::ByteRecord, path: &Path, name: &str) -> Result<usize> {
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
pub(super) enum LabelIssue {
    /// Not in the class map: [`ProblemKind::UnknownLabel`].
    Unknown,
    /// Cannot be a class name at all: [`ProblemKind::BadLabel`] with this reason.
    Bad(String),
}

/// Turns CSV rows into samples, reporting duplicates, missing files, files outside
/// `inside` (a canonical root, when the layout keeps its images under one) and labels
/// that give no class. `label_of` maps a label cell to a class id.
pub(super) fn csv_samples(
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
pub(super) fn lexical_clean(path: &Path) -> PathBuf {
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
pub(super) fn labelled(items: &[(PathBuf, Option<u32>, RowSplit)], want: RowSplit) -> Vec<Sample> {
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

pub(super) fn open_analytics_vidhya(root: &Path) -> Result<Dataset> {
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

pub(super) fn open_path_csv(csv_path: &Path) -> Result<Dataset> {
    let dir = csv_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let bytes = vista_format::read_limited(csv_path, MAX_CSV_BYTES)?;
    let columns = detect_columns(&bytes);
    let (mut rows, found) = parse_dataset_csv(&bytes, csv_path, dir, &columns)?;
    // A test row without a label is an image to predict, as competitions list them.
    for row in &mut rows {
        if row.split == Some(RowSplit::Test) && row.label.as_deref() == Some("") {
            row.label = None;
        }
    }
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
        unlabelled: (items.iter())
            .filter(|(_, label, split)| label.is_none() && *split == RowSplit::Test)
            .map(|(path, _, _)| path.clone())
            .collect(),
        problems,
        view: None,
    })
}
