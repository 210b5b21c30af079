//! vista-eval's error type: every variant names the file it concerns.

use std::path::PathBuf;

use vista_data::ProblemKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{} line {line}: {message}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{} does not match {}: {message}", path.display(), first.display())]
    Mismatch {
        path: PathBuf,
        first: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot use the image {}: {problem}", path.display())]
    BadImage { path: PathBuf, problem: ProblemKind },
    #[error(transparent)]
    Files(#[from] vista_format::Error),
    #[error(transparent)]
    Data(#[from] vista_data::Error),
    #[error(transparent)]
    Model(#[from] vista_models::Error),
    #[error(transparent)]
    Plot(#[from] vista_plot::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
