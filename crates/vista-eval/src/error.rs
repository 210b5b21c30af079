//! vista-eval's error type: every variant names the file it concerns.

use std::path::PathBuf;

use vista_data::ProblemKind;

/// Everything that can go wrong while predicting, evaluating, ensembling or writing a
/// submission.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or folder that could not be read or written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file (predictions, labels, a submission) could not be parsed or written.
    #[error("{}: {source}", path.display())]
    Csv {
        /// The CSV file at fault.
        path: PathBuf,
        /// The CSV library's error.
        #[source]
        source: csv::Error,
    },
    /// A CSV file parsed, but one of its lines is not what vista expects.
    #[error("{} line {line}: {message}", path.display())]
    Format {
        /// The CSV file at fault.
        path: PathBuf,
        /// The 1-based line of the file at fault (the header is line 1).
        line: usize,
        /// What is wrong with the line, such as an unknown class or a repeated image.
        message: String,
    },
    /// A prediction file of an ensemble does not match the first one: other classes,
    /// or other images in another order.
    #[error("{} does not match {}: {message}", path.display(), first.display())]
    Mismatch {
        /// The prediction file that does not match.
        path: PathBuf,
        /// The ensemble's first prediction file, which the others must match.
        first: PathBuf,
        /// How the two differ.
        message: String,
    },
    /// An argument or setting is not usable (an empty ensemble, bad weights, an unknown
    /// test-time augmentation, predictions without labels, ...).
    #[error("{0}")]
    Invalid(
        /// A message saying what is wrong and, where it helps, what to give instead.
        String,
    ),
    /// An image to predict could not be decoded, and the bad-image policy is `error`.
    #[error("cannot use the image {}: {problem}", path.display())]
    BadImage {
        /// The image file at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: ProblemKind,
    },
    /// An error of vista's file helpers (atomic writes, size-limited reads).
    #[error(transparent)]
    Files(#[from] vista_format::Error),
    /// An error of the data layer (datasets, class maps).
    #[error(transparent)]
    Data(#[from] vista_data::Error),
    /// An error of the model layer.
    #[error(transparent)]
    Model(#[from] vista_models::Error),
    /// An error while drawing a plot (confusion matrix, top losses).
    #[error(transparent)]
    Plot(#[from] vista_plot::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
