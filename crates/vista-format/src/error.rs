//! Errors of the format layer: each variant names the file the user has to look at.

use std::path::PathBuf;

/// Everything that can go wrong while writing or reading one of vista's files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A file is larger than vista reads for its kind.
    #[error("{path}: {size} bytes, more than the {limit} bytes read for this kind of file")]
    TooBig {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// A file of vista's own is a symbolic link, which vista never writes through.
    #[error(
        "{path}: is a symbolic link; vista does not write through links (remove it, or give another folder)"
    )]
    Symlink { path: PathBuf },
    /// A class name that cannot name a folder (see `check_class_name`).
    #[error("{path}:{line}: class name {name:?} {why}")]
    BadClassName {
        path: PathBuf,
        /// 1-based position in the list.
        line: usize,
        name: String,
        #[source]
        why: crate::classes::BadClassName,
    },
    /// The same class is named twice.
    #[error("{path}: class `{name}` is listed twice")]
    DuplicateClass { path: PathBuf, name: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
