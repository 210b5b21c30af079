//! Errors of the training layer: each names the file or setting at fault.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of its range, or contradicts another one.
    #[error("invalid setting `{setting}`: {why}")]
    Invalid { setting: &'static str, why: String },
    #[error("unknown schedule `{name}` (one-cycle, sgdr, flat-cos, cosine)")]
    UnknownSchedule { name: String },
    /// The run to start from records no input normalization.
    #[error("{} records no normalization", path.display())]
    NoNormalization { path: PathBuf },
    /// The extra ratio asks for more extra images than the extra data holds.
    #[error(
        "extra ratio {ratio} asks for {want} extra images ({real} real training images), but {} holds {have}",
        dir.display()
    )]
    NotEnoughExtra {
        ratio: f32,
        want: usize,
        real: usize,
        have: usize,
        dir: PathBuf,
    },
    /// A checkpoint (or the pointer to the newest one) that is not this run's.
    #[error("{} is not a checkpoint of this run: {why}", path.display())]
    BadCheckpoint { path: PathBuf, why: String },
    /// A GAN run whose generator has not finished training.
    #[error("{} has no trained generator ({} is missing)", dir.display(), weights.display())]
    NoGenerator { dir: PathBuf, weights: PathBuf },
    /// Too few images for one generator step per epoch.
    #[error(
        "{images} training images make {batches} GAN batches of {batch_size}, fewer than the {critic_steps} critic steps before a generator step"
    )]
    TooFewImages {
        images: usize,
        batches: usize,
        batch_size: usize,
        critic_steps: usize,
    },
    /// An unconditional GAN was asked for images of a class.
    #[error("{} is an unconditional GAN: its images have no class to file them under", dir.display())]
    Unconditional { dir: PathBuf },
    /// The output folder exists already; nothing was written.
    #[error("{} already exists (nothing was written)", path.display())]
    OutputExists { path: PathBuf },
    #[error("cannot write the image {}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// A resumed run has already trained more epochs than asked.
    #[error("{} has trained {done} epochs already, more than the {asked} asked", dir.display())]
    AlreadyTrained {
        dir: PathBuf,
        done: usize,
        asked: usize,
    },
    /// The folder already holds a run with checkpoints, and resuming was not asked for.
    #[error("{} already holds {what} with checkpoints", dir.display())]
    RunExists { dir: PathBuf, what: &'static str },
    /// A resume asked for other settings than the run was started with.
    #[error("resuming with settings that differ from {} ({})", path.display(), differing.join(", "))]
    ResumeSettingsDiffer {
        path: PathBuf,
        differing: Vec<String>,
    },
    /// A resume was given other training data than the run trained on.
    #[error("resuming on other data than {} trained on: {why}", path.display())]
    ResumeDataDiffers { path: PathBuf, why: String },
    /// The finished run to start from does not fit this one.
    #[error("the run to start from, {}, does not fit: {why}", path.display())]
    InitMismatch { path: PathBuf, why: String },
    /// Another process holds the run folder.
    #[error(
        "{} is in use by another vista process (pid {pid}); wait for it to finish, or choose another output folder",
        dir.display()
    )]
    Busy { dir: PathBuf, pid: String },
    #[error("cannot load pretrained weights from {}", path.display())]
    Pretrained {
        path: PathBuf,
        #[source]
        source: vista_models::Error,
    },
    #[error("cannot build the model")]
    Model(#[from] vista_models::Error),
    #[error("cannot read or write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read or write the record {}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: burn::record::RecorderError,
    },
    #[error("{} is not a valid checkpoint state", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Plot(#[from] vista_plot::Error),
    #[error("the loss became {value} at epoch {epoch}, step {step}; lower the learning rate")]
    Diverged {
        epoch: usize,
        step: usize,
        value: f32,
    },
    #[error("data error")]
    Data(#[from] vista_data::Error),
    #[error(transparent)]
    Files(#[from] vista_format::Error),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn record(path: &Path, source: burn::record::RecorderError) -> Self {
        Error::Record {
            path: path.to_path_buf(),
            source,
        }
    }
}
