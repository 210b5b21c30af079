//! vista-clean's error type: every variant names the file it concerns.

use std::path::PathBuf;

/// Everything that can go wrong while finding, reviewing, applying or undoing a
/// cleaning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read, written or moved.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (manifest, journal, record of moves) could not be parsed or written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The JSON file at fault.
        path: PathBuf,
        /// The JSON parser's or writer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A file, folder or setting cannot be used as it is; nothing was changed for it.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file or folder at fault (an image, the record of moves, the dataset).
        path: PathBuf,
        /// What is wrong, and what to do about it where that helps.
        message: String,
    },
    /// An error of vista's file helpers (atomic writes, size-limited reads).
    #[error(transparent)]
    Files(#[from] vista_format::Error),
    /// An error of the data layer (opening or loading the dataset, its cleaned view).
    #[error(transparent)]
    Data(#[from] vista_data::Error),
    /// An error while predicting or reading predictions.
    #[error(transparent)]
    Eval(#[from] vista_eval::Error),
    /// An error while drawing contact sheets.
    #[error(transparent)]
    Plot(#[from] vista_plot::Error),
    /// An error while training the out-of-fold models.
    #[error(transparent)]
    Train(#[from] vista_train::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
