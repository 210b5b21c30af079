//! Errors of the format layer: each variant names the file the user has to look at.

use std::path::PathBuf;

/// Everything that can go wrong while writing or reading one of vista's files.
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
    /// A JSON file could not be parsed or written.
    #[error("{path}: {source}")]
    Json {
        /// The JSON file that could not be parsed or written.
        path: PathBuf,
        /// What the JSON parser or writer reported.
        #[source]
        source: serde_json::Error,
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
        /// The link vista refused to write through.
        path: PathBuf,
    },
    /// A class name that cannot name a folder (see `check_class_name`).
    #[error("{path}:{line}: class name {name:?} {why}")]
    BadClassName {
        /// The file the class list was read from.
        path: PathBuf,
        /// 1-based position in the list.
        line: usize,
        /// The rejected class name.
        name: String,
        /// Which rule the name breaks.
        #[source]
        why: crate::classes::BadClassName,
    },
    /// The same class is named twice.
    #[error("{path}: class `{name}` is listed twice")]
    DuplicateClass {
        /// The file the class list was read from.
        path: PathBuf,
        /// The class that appears more than once.
        name: String,
    },
}

/// The result of reading or writing vista's files, with this crate's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
