//! Errors of drawing: each names the picture being drawn.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// plotters or the PNG encoder failed.
    #[error("cannot draw {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// The picture could not be written.
    #[error(transparent)]
    Files(#[from] vista_format::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
