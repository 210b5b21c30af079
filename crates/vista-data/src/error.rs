//! Errors of the data layer: each variant names the file or folder the user has to look at.

use std::path::PathBuf;

use crate::problem::ProblemReport;

/// Everything that can go wrong while opening, checking or loading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder that could not be read or written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file could not be parsed at all (bad rows are problems, not errors).
    #[error("{path}: {source}")]
    Csv {
        /// The CSV file that could not be parsed.
        path: PathBuf,
        /// The CSV reader's error, with the position where parsing failed.
        #[source]
        source: csv::Error,
    },
    /// A folder given to walk holds more entries than are looked at.
    #[error("{path}: more than {max} files and folders; give a smaller folder")]
    TooManyEntries {
        /// The folder given.
        path: PathBuf,
        /// The most entries looked at.
        max: usize,
    },
    /// A CSV file lacks a column the layout needs.
    #[error("{path}: missing column `{column}` (header is: {header})")]
    MissingColumn {
        /// The CSV file whose header lacks the column.
        path: PathBuf,
        /// The name of the missing column, such as `label` (matched ignoring case).
        column: String,
        /// The header row as found in the file, its cells joined by commas.
        header: String,
    },
    /// A JSON file (class map, manifest) could not be read or written.
    #[error("{path}: {source}")]
    Json {
        /// The JSON file that could not be parsed or written.
        path: PathBuf,
        /// The JSON parser's or writer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The path matches none of the layouts vista reads.
    #[error(
        "{path}: no known dataset layout found (looked for: a CSV file of `path,label`; \
         `seg_train/` (Kaggle Intel); `train.csv` (Analytics Vidhya); class folders holding images)"
    )]
    UnknownLayout {
        /// The file or folder given as the dataset.
        path: PathBuf,
    },
    /// A cleaned view relabels an image to a class the dataset does not have.
    #[error("{path}: relabels {file} to `{class}`, which is not a class of the dataset")]
    UnknownClass {
        /// The cleaned-view file (`vista-clean.json`) holding the relabelling.
        path: PathBuf,
        /// The image the view relabels.
        file: PathBuf,
        /// The class name the view gives the image, which the dataset lacks.
        class: String,
    },
    /// Extra training images (generated ones, say) name a class the dataset lacks.
    #[error("{path}: class folder `{class}` is not a class of the dataset ({})", known.join(", "))]
    ForeignClass {
        /// The folder of extra images.
        path: PathBuf,
        /// The class folder name that the dataset lacks.
        class: String,
        /// The dataset's class names, in label order.
        known: Vec<String>,
    },
    /// A class name that cannot name a folder (see `check_class_name`).
    #[error("{path}:{line}: class name {name:?} {why}")]
    BadClassName {
        /// The file (class list, class map) or folder the name was read from.
        path: PathBuf,
        /// The 1-based line of the file, or position in the list, holding the name.
        line: usize,
        /// The class name as found.
        name: String,
        /// Which rule the name breaks.
        #[source]
        why: vista_format::BadClassName,
    },
    /// The same class is named twice.
    #[error("{path}: class `{name}` is listed twice")]
    DuplicateClass {
        /// The file (class list, class map) or folder whose list names the class twice.
        path: PathBuf,
        /// The class name listed twice.
        name: String,
    },
    /// A file is larger than vista reads for its kind.
    #[error("{path}: {size} bytes, more than the {limit} bytes read for this kind of file")]
    TooBig {
        /// The file that is too large.
        path: PathBuf,
        /// The file's size, in bytes.
        size: u64,
        /// The most bytes vista reads for this kind of file.
        limit: u64,
    },
    /// A file of vista's own is a symbolic link, which vista never writes through.
    #[error(
        "{path}: is a symbolic link; vista does not write through links (remove it, or give another folder)"
    )]
    Symlink {
        /// The path of vista's own file, found to be a symbolic link.
        path: PathBuf,
    },
    /// The dataset holds no usable labelled image.
    #[error("{path}: no labelled image found")]
    Empty {
        /// The dataset's file or folder.
        path: PathBuf,
    },
    /// Problems were found and the policy is `error`; the report lists every one.
    #[error("{} problem(s) found in the dataset (the bad-image policy is `error`):\n{report}", report.problems.len())]
    BadImages {
        /// Every problem found, each naming its file.
        report: ProblemReport,
    },
    /// An embedded-data file is malformed.
    #[error("{path}: not an IDX file ({reason})")]
    Idx {
        /// The malformed IDX file.
        path: PathBuf,
        /// What is wrong with it (bad magic number, wrong size, ...).
        reason: String,
    },
    /// An image could not be encoded (grids, materialized datasets).
    #[error("{path}: {source}")]
    Image {
        /// The image file that could not be encoded or written.
        path: PathBuf,
        /// The image library's error.
        #[source]
        source: image::ImageError,
    },
    /// The split asked for holds no image.
    #[error("{} has no {split} images", root.display())]
    EmptySplit {
        /// The dataset's root folder.
        root: PathBuf,
        /// The split that holds no image: `"test"` or `"unlabelled"`.
        split: &'static str,
    },
    /// A setting is out of its valid range.
    #[error("invalid setting: {0}")]
    Config(
        /// A message naming the setting (or file) at fault and what is wrong with it.
        String,
    ),
    /// The dataset holds no usable labelled image, and the problems found while listing
    /// it say why (every class folder badly named, every row unreadable, ...).
    #[error("{path}: no labelled image found; {} problem(s) found while listing it:\n{report}", report.problems.len())]
    EmptyWithProblems {
        /// The dataset's file or folder.
        path: PathBuf,
        /// The problems found while listing the dataset, each naming its file.
        report: ProblemReport,
    },
}

impl From<vista_format::Error> for Error {
    /// The format layer's errors are the same kinds as this crate's, kept as they are so
    /// callers match one set of variants.
    fn from(e: vista_format::Error) -> Self {
        match e {
            vista_format::Error::Io { path, source } => Error::Io { path, source },
            vista_format::Error::Json { path, source } => Error::Json { path, source },
            vista_format::Error::TooBig { path, size, limit } => {
                Error::TooBig { path, size, limit }
            }
            vista_format::Error::Symlink { path } => Error::Symlink { path },
            vista_format::Error::BadClassName {
                path,
                line,
                name,
                why,
            } => Error::BadClassName {
                path,
                line,
                name,
                why,
            },
            vista_format::Error::DuplicateClass { path, name } => {
                Error::DuplicateClass { path, name }
            }
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
