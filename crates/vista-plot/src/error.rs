//! Errors of drawing: each names the picture being drawn.

use std::path::PathBuf;

/// Why a picture could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// plotters or the PNG encoder failed.
    #[error("cannot draw {}: {message}", path.display())]
    Plot {
        /// The PNG file that was being drawn.
        path: PathBuf,
        /// What plotters or the encoder reported.
        message: String,
    },
    /// The picture could not be written.
    #[error(transparent)]
    Files(#[from] vista_format::Error),
}

/// The result of drawing, with this crate's [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
