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
    Corrupt {
        /// The decoder's message, such as where the data ends early.
        detail: String,
    },
    /// The image has more pixels than the decompression-bomb guard allows.
    TooLarge {
        /// The image's width, in pixels, as its header gives it.
        width: u32,
        /// The image's height, in pixels, as its header gives it.
        height: u32,
        /// The most pixels (width times height) an image may have.
        max_pixels: u64,
    },
    /// A CSV row names a file that does not exist.
    MissingFile {
        /// The CSV file holding the row.
        #[serde(serialize_with = "lossy_path")]
        csv: PathBuf,
        /// The row's number among the data rows, from 1 (the header is not counted).
        row: usize,
    },
    /// A CSV row carries a label outside the class map.
    UnknownLabel {
        /// The CSV file holding the row.
        #[serde(serialize_with = "lossy_path")]
        csv: PathBuf,
        /// The row's number among the data rows, from 1 (the header is not counted).
        row: usize,
        /// The label cell as found in the row.
        label: String,
    },
    /// The same file is listed twice; the first entry is kept.
    Duplicate {
        /// The CSV file holding the row.
        #[serde(serialize_with = "lossy_path")]
        csv: PathBuf,
        /// The row's number among the data rows, from 1 (the header is not counted).
        row: usize,
        /// The data row that first listed the file, counted the same way as `row`.
        first_row: usize,
    },
    /// A class folder holds no image.
    EmptyClass {
        /// The name of the class whose folder holds no image.
        class: String,
    },
    /// The file could not be read (including a symbolic link that leads nowhere, and
    /// something that is neither a file nor a folder, such as a FIFO).
    Unreadable {
        /// Why the file could not be read: the system's message, or what the path is
        /// instead of a regular file.
        detail: String,
    },
    /// The file is larger than vista reads for an image
    /// ([`MAX_IMAGE_FILE_BYTES`](crate::MAX_IMAGE_FILE_BYTES)); none of it was read.
    FileTooLarge {
        /// The file's size, in bytes.
        bytes: u64,
        /// The most bytes read for an image file.
        max_bytes: u64,
    },
    /// A file in a folder of images whose extension is none vista reads
    /// ([`IMAGE_EXTENSIONS`](crate::IMAGE_EXTENSIONS)); it is not read.
    UnsupportedFormat {
        /// The file's extension, without the dot; empty when the file has none.
        extension: String,
    },
    /// A file or folder where the layout reads no image: a file beside the class
    /// folders, or a folder inside a class folder. It is not read.
    Unplaced,
    /// A folder whose name cannot be a class name (not UTF-8, or refused by
    /// [`check_class_name`](crate::check_class_name)); its images are not read.
    BadClassFolder {
        /// The folder's name, with anything that is not UTF-8 replaced.
        name: String,
        /// Why the name cannot be a class name, phrased to follow "it" (such as
        /// "is not valid UTF-8").
        reason: String,
    },
    /// A CSV row whose label cannot be a class name or is not UTF-8; the row is left out.
    BadLabel {
        /// The CSV file holding the row.
        #[serde(serialize_with = "lossy_path")]
        csv: PathBuf,
        /// The row's number among the data rows, from 1 (the header is not counted).
        row: usize,
        /// The label cell as found in the row, with anything that is not UTF-8 replaced.
        label: String,
        /// Why the label cannot be a class name, phrased to follow "it" (such as
        /// "is not valid UTF-8").
        reason: String,
    },
    /// A CSV row that cannot be read at all; the row is left out.
    BadRow {
        /// The CSV file holding the row.
        #[serde(serialize_with = "lossy_path")]
        csv: PathBuf,
        /// The row's number among the data rows, from 1 (the header is not counted).
        row: usize,
        /// Why the row could not be read: the CSV reader's message, or what is wrong
        /// with its file cell.
        detail: String,
    },
    /// A symbolic link, or a file a CSV row names, that resolves outside the dataset's
    /// folder; it is never read.
    OutsideRoot {
        /// Where the link or file really leads, outside the dataset's folder.
        #[serde(serialize_with = "lossy_path")]
        target: PathBuf,
    },
    /// A class folder of the test split whose class is not one of the training
    /// folders'; its images are not read.
    UnknownClassFolder {
        /// The test folder's name, which no training class folder carries.
        class: String,
    },
}

impl ProblemKind {
    /// True for a file that no layout would read as an image anyway (a README or
    /// licence beside the class folders): it is listed, so nothing is dropped without
    /// a word, but it does not fail the `error` policy, since no image is lost.
    pub fn is_notice(&self) -> bool {
        matches!(self, ProblemKind::Unplaced)
    }

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
                | ProblemKind::FileTooLarge { .. }
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
            ProblemKind::FileTooLarge { .. } => "file_too_large",
            ProblemKind::UnsupportedFormat { .. } => "unsupported_format",
            ProblemKind::Unplaced => "unplaced",
            ProblemKind::BadClassFolder { .. } => "bad_class_folder",
            ProblemKind::BadLabel { .. } => "bad_label",
            ProblemKind::BadRow { .. } => "bad_row",
            ProblemKind::OutsideRoot { .. } => "outside_root",
            ProblemKind::UnknownClassFolder { .. } => "unknown_class_folder",
        }
    }
}

/// The extensions vista reads, for messages.
const READS: &str = ".jpg, .jpeg, .jfif, .png, .webp, .bmp, .tif, .tiff and .gif";

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
                write!(
                    f,
                    "unknown label `{}` in {} row {row}",
                    printable(label),
                    printable(&csv.to_string_lossy())
                )
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
            ProblemKind::FileTooLarge { bytes, max_bytes } => write!(
                f,
                "file is {bytes} bytes, above the limit of {max_bytes} bytes for an image file; not read"
            ),
            ProblemKind::UnsupportedFormat { extension } if extension.is_empty() => write!(
                f,
                "file without an extension in an image folder; not read (vista reads {READS})"
            ),
            ProblemKind::UnsupportedFormat { extension } => write!(
                f,
                "unsupported format `.{}`; not read (vista reads {READS})",
                printable(extension)
            ),
            ProblemKind::Unplaced => write!(
                f,
                "not read: images are read only from class folders (<root>/<class>/<image>), \
                 not beside them nor from folders inside them"
            ),
            ProblemKind::BadClassFolder { name, reason } => write!(
                f,
                "folder name {name:?} cannot be a class name: it {reason}; its images are not read"
            ),
            ProblemKind::BadLabel {
                csv,
                row,
                label,
                reason,
            } => write!(
                f,
                "label {label:?} in {} row {row} cannot be a class name: it {reason}",
                csv.display()
            ),
            ProblemKind::BadRow { csv, row, detail } => {
                write!(f, "unreadable row {row} of {}: {detail}", csv.display())
            }
            ProblemKind::OutsideRoot { target } => write!(
                f,
                "leads to {}, outside the dataset's folder; not read",
                printable(&target.to_string_lossy())
            ),
            ProblemKind::UnknownClassFolder { class } => write!(
                f,
                "class folder `{class}` is not a class of the training folders; its images are not read"
            ),
        }
    }
}

/// Writes a path as text, replacing what is not UTF-8. A dataset may hold such names,
/// and serde's own `Path` serializer fails on them, which would lose the whole report;
/// the report is for reading, and `Display` shows these paths the same way.
fn lossy_path<P: AsRef<Path>, S: serde::Serializer>(
    path: &P,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.as_ref().to_string_lossy())
}

/// One problem and the file (or folder) it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The file or folder at fault; for a problem of a CSV row, the image file the row
    /// names, or the CSV file itself when the row cannot be read.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// What is wrong with it.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            printable(&self.path.to_string_lossy()),
            self.kind
        )
    }
}

/// `s` with control characters escaped (`\u{1b}`), since the names in a report come from
/// someone else's dataset and a raw escape sequence would drive the reader's terminal.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
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
    /// The problems, sorted by path and then by [`ProblemKind::code`].
    pub problems: Vec<Problem>,
}

impl ProblemReport {
    /// A report of `problems`, sorted by path and then by kind so that the order is
    /// stable.
    pub fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| {
            a.path
                .cmp(&b.path)
                .then_with(|| a.kind.code().cmp(b.kind.code()))
        });
        Self { problems }
    }

    /// True when no problem, not even a notice, was found.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Applies the policy: `Error` turns a report with any problem but notices
    /// ([`ProblemKind::is_notice`]) into [`Error::BadImages`].
    pub fn enforce(self, policy: OnBadImage) -> Result<Self> {
        if policy == OnBadImage::Error && self.problems.iter().any(|p| !p.kind.is_notice()) {
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
        Ok(vista_format::write_atomic(path, &bytes)?)
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
