//! Errors of the training layer: each names the file or setting at fault.

use std::path::{Path, PathBuf};

/// The result of the training layer's operations, failing with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why training, resuming, loading or sampling a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of its range, or contradicts another one.
    #[error("invalid setting `{setting}`: {why}")]
    Invalid {
        /// The name of the setting at fault, as the configuration spells it.
        setting: &'static str,
        /// What is wrong with its value.
        why: String,
    },
    /// A schedule name that is none of one-cycle, sgdr, flat-cos and cosine.
    #[error("unknown schedule `{name}` (one-cycle, sgdr, flat-cos, cosine)")]
    UnknownSchedule {
        /// The schedule name as given.
        name: String,
    },
    /// The run to start from records no input normalization.
    #[error("{} records no normalization", path.display())]
    NoNormalization {
        /// The configuration file of that run.
        path: PathBuf,
    },
    /// The extra ratio asks for more extra images than the extra data holds.
    #[error(
        "extra ratio {ratio} asks for {want} extra images ({real} real training images), but {} holds {have}",
        dir.display()
    )]
    NotEnoughExtra {
        /// The extra images asked for per real training image.
        ratio: f32,
        /// The number of extra images the ratio asks for.
        want: usize,
        /// The number of real training images the ratio applies to.
        real: usize,
        /// The number of images the extra data holds.
        have: usize,
        /// The folder of the extra data.
        dir: PathBuf,
    },
    /// A checkpoint (or the pointer to the newest one) that is not this run's.
    #[error("{} is not a checkpoint of this run: {why}", path.display())]
    BadCheckpoint {
        /// The checkpoint file, or the `checkpoints/latest` pointer, at fault.
        path: PathBuf,
        /// What does not fit this run.
        why: String,
    },
    /// A GAN run whose generator has not finished training.
    #[error("{} has no trained generator ({} is missing)", dir.display(), weights.display())]
    NoGenerator {
        /// The folder of the GAN run.
        dir: PathBuf,
        /// The generator's weights file that is missing.
        weights: PathBuf,
    },
    /// Too few images for one generator step per epoch.
    #[error(
        "{images} training images make {batches} GAN batches of {batch_size}, fewer than the {critic_steps} critic steps before a generator step"
    )]
    TooFewImages {
        /// The number of training images.
        images: usize,
        /// The number of full batches they make per epoch.
        batches: usize,
        /// The number of images per batch.
        batch_size: usize,
        /// The number of critic steps taken before each generator step.
        critic_steps: usize,
    },
    /// An unconditional GAN was asked for images of a class.
    #[error("{} is an unconditional GAN: its images have no class to file them under", dir.display())]
    Unconditional {
        /// The folder of the GAN run.
        dir: PathBuf,
    },
    /// The output folder exists already; nothing was written.
    #[error("{} already exists (nothing was written)", path.display())]
    OutputExists {
        /// The output folder that exists.
        path: PathBuf,
    },
    /// A generated image could not be written.
    #[error("cannot write the image {}", path.display())]
    Image {
        /// The image file that could not be written.
        path: PathBuf,
        /// The image library's error.
        #[source]
        source: image::ImageError,
    },
    /// A resumed run has already trained more epochs than asked.
    #[error("{} has trained {done} epochs already, more than the {asked} asked", dir.display())]
    AlreadyTrained {
        /// The folder of the run.
        dir: PathBuf,
        /// The number of epochs the run has trained.
        done: usize,
        /// The number of epochs asked for.
        asked: usize,
    },
    /// The folder already holds a run with checkpoints, and resuming was not asked for.
    #[error("{} already holds {what} with checkpoints", dir.display())]
    RunExists {
        /// The run folder.
        dir: PathBuf,
        /// What kind of run it holds, such as "a run" or "a GAN run".
        what: &'static str,
    },
    /// A resume asked for other settings than the run was started with.
    #[error("resuming with settings that differ from {} ({})", path.display(), differing.join(", "))]
    ResumeSettingsDiffer {
        /// The configuration file the run was started with.
        path: PathBuf,
        /// The settings that differ, by name where known.
        differing: Vec<String>,
    },
    /// A resume was given other training data than the run trained on.
    #[error("resuming on other data than {} trained on: {why}", path.display())]
    ResumeDataDiffers {
        /// The file that records the data the run trained on (its classes or a checkpoint).
        path: PathBuf,
        /// How the data differs.
        why: String,
    },
    /// The finished run to start from does not fit this one.
    #[error("the run to start from, {}, does not fit: {why}", path.display())]
    InitMismatch {
        /// The file of that run that does not fit (its configuration or classes).
        path: PathBuf,
        /// How it does not fit.
        why: String,
    },
    /// Another process holds the run folder.
    #[error(
        "{} is in use by another vista process (pid {pid}); wait for it to finish, or choose another output folder",
        dir.display()
    )]
    Busy {
        /// The run folder.
        dir: PathBuf,
        /// The process id recorded in the folder's lock file, as read from it.
        pid: String,
    },
    /// Pretrained weights could not be loaded into the model.
    #[error("cannot load pretrained weights from {}", path.display())]
    Pretrained {
        /// The weights file.
        path: PathBuf,
        /// The models layer's error.
        #[source]
        source: vista_models::Error,
    },
    /// The model could not be built.
    #[error("cannot build the model")]
    Model(#[from] vista_models::Error),
    /// A file or folder could not be read or written.
    #[error("cannot read or write {}", path.display())]
    Io {
        /// The file or folder at fault.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A record (model or optimizer weights) could not be read or written, or does not
    /// fit the model.
    #[error("cannot read or write the record {}", path.display())]
    Record {
        /// The record file at fault.
        path: PathBuf,
        /// burn's recorder error.
        #[source]
        source: burn::record::RecorderError,
    },
    /// A checkpoint's state file does not parse.
    #[error("{} is not a valid checkpoint state", path.display())]
    State {
        /// The state file at fault.
        path: PathBuf,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A plot of the run could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] vista_plot::Error),
    /// The training loss became infinite or NaN.
    #[error("the loss became {value} at epoch {epoch}, step {step}; lower the learning rate")]
    Diverged {
        /// The epoch it happened in, counted from 1.
        epoch: usize,
        /// The step within that epoch at which it happened, counted from 1.
        step: usize,
        /// The loss it became.
        value: f32,
    },
    /// The dataset, or a file of it, could not be read, parsed or written.
    #[error("data error")]
    Data(#[from] vista_data::Error),
    /// A file of the run (configuration, metrics, state) could not be read or written.
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
