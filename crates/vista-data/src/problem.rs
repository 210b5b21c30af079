//! Problems found in a dataset, one per file, and the report that lists them all.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What is wrong with one file, folder or CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProblemKind {
    /// The file has zero bytes.
    EmptyFile,
    /// The file has an image extension but its content is no image format vista decodes.
    NotAnImage,
    /// The image is truncated or corrupt; `detail` is the decoder's message.
    Corrupt { detail: String },
    /// The image has more pixels than the decompression-bomb guard allows.
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// A CSV row names a file that does not exist.
    MissingFile { csv: PathBuf, row: usize },
    /// A CSV row carries a label outside the class map.
    UnknownLabel {
        csv: PathBuf,
        row: usize,
        label: String,
    },
    /// The same file is listed twice; the first entry is kept.
    Duplicate {
        csv: PathBuf,
        row: usize,
        first_row: usize,
    },
    /// A class folder holds no image.
    EmptyClass { class: String },
    /// The file could not be read.
    Unreadable { detail: String },
}

impl ProblemKind {
    /// True for problems inside a file (which make every entry naming it unusable), false
    /// for problems of a listing (a CSV row, a folder), which concern only that entry.
    pub fn is_in_file(&self) -> bool {
        matches!(
            self,
            ProblemKind::EmptyFile
                | ProblemKind::NotAnImage
                | ProblemKind::Corrupt { .. }
                | ProblemKind::TooLarge { .. }
                | ProblemKind::Unreadable { .. }
        )
    }

    /// Short machine-readable name, used in CSV reports.
    pub fn code(&self) -> &'static str {
        match self {
            ProblemKind::EmptyFile => "empty_file",
            ProblemKind::NotAnImage => "not_an_image",
            ProblemKind::Corrupt { .. } => "corrupt",
            ProblemKind::TooLarge { .. } => "too_large",
            ProblemKind::MissingFile { .. } => "missing_file",
            ProblemKind::UnknownLabel { .. } => "unknown_label",
            ProblemKind::Duplicate { .. } => "duplicate",
            ProblemKind::EmptyClass { .. } => "empty_class",
            ProblemKind::Unreadable { .. } => "unreadable",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::EmptyFile => write!(f, "zero-byte file"),
            ProblemKind::NotAnImage => {
                write!(
                    f,
                    "not an image (content is no JPEG or PNG despite the extension)"
                )
            }
            ProblemKind::Corrupt { detail } => write!(f, "truncated or corrupt image: {detail}"),
            ProblemKind::TooLarge {
                width,
                height,
                max_pixels,
            } => write!(
                f,
                "image is {width}x{height} = {} pixels, above the limit of {max_pixels} (decompression-bomb guard)",
                u64::from(*width) * u64::from(*height)
            ),
            ProblemKind::MissingFile { csv, row } => {
                write!(f, "missing file, named by {} row {row}", csv.display())
            }
            ProblemKind::UnknownLabel { csv, row, label } => {
                write!(f, "unknown label `{label}` in {} row {row}", csv.display())
            }
            ProblemKind::Duplicate {
                csv,
                row,
                first_row,
            } => write!(
                f,
                "duplicate entry in {} row {row} (first listed at row {first_row}; that one is kept)",
                csv.display()
            ),
            ProblemKind::EmptyClass { class } => write!(f, "class folder `{class}` holds no image"),
            ProblemKind::Unreadable { detail } => write!(f, "cannot read file: {detail}"),
        }
    }
}

/// One problem and the file (or folder) it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub path: PathBuf,
    #[serde(flatten)]
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

/// What to do when problems are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadImage {
    /// List every problem, then fail.
    #[default]
    Error,
    /// List every problem, leave the bad files out, and go on.
    Skip,
}

impl std::str::FromStr for OnBadImage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "error" => Ok(OnBadImage::Error),
            "skip" => Ok(OnBadImage::Skip),
            other => Err(format!("`{other}` is not a policy; use `error` or `skip`")),
        }
    }
}

/// Every problem found in a dataset, in a stable order (by path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProblemReport {
    pub problems: Vec<Problem>,
}

impl ProblemReport {
    pub fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| {
            a.path
                .cmp(&b.path)
                .then_with(|| a.kind.code().cmp(b.kind.code()))
        });
        Self { problems }
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Applies the policy: `Error` turns a non-empty report into [`Error::BadImages`].
    pub fn enforce(self, policy: OnBadImage) -> Result<Self> {
        if policy == OnBadImage::Error && !self.is_empty() {
            return Err(Error::BadImages { report: self });
        }
        Ok(self)
    }

    /// Writes the report as JSON (`.json`) or CSV (any other extension), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = if path.extension().is_some_and(|e| e == "json") {
            serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
                path: path.into(),
                source,
            })?
        } else {
            let mut out = String::from("path,problem,detail\n");
            for p in &self.problems {
                out.push_str(&format!(
                    "{},{},{}\n",
                    csv_field(&p.path.display().to_string()),
                    p.kind.code(),
                    csv_field(&p.kind.to_string())
                ));
            }
            out.into_bytes()
        };
        crate::fsutil::write_atomic(path, &bytes)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl fmt::Display for ProblemReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}
