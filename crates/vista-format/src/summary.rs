//! What commands print with `--json`, one object on one line, for programs (xtask, a
//! user's scripts) that would otherwise have to read text meant for people.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `vista data check --json`: the dataset as vista sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The dataset folder that was checked.
    pub dataset: PathBuf,
    /// The layout detected, as `vista data check` names it.
    pub layout: String,
    /// Per class, in label order.
    pub classes: Vec<ClassCount>,
    /// Labelled training images.
    pub train: usize,
    /// Images of the dataset's own validation set (0 when a run splits one off).
    #[serde(default)]
    pub valid: usize,
    /// Labelled held-out (test) images.
    pub test: usize,
    /// Images without a label (to predict).
    pub unlabelled: usize,
    /// The training images' sizes, summarized for people (e.g. `28x28 (all)`).
    pub image_sizes: String,
    /// Problems found (the report lists them).
    pub problems: usize,
    /// Bytes the training images take decoded for a run of the default recipe (shorter
    /// side bounded to 15% above its largest size).
    pub cache_bytes: u64,
}

/// Images of one class in each labelled split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassCount {
    /// The class's name.
    pub class: String,
    /// Labelled training images of the class.
    pub train: usize,
    /// Validation images of the class.
    #[serde(default)]
    pub valid: usize,
    /// Labelled held-out (test) images of the class.
    pub test: usize,
}

/// `vista data prepare --json`: where the embedded data was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedData {
    /// The folder the dataset was written to.
    pub dataset: PathBuf,
}

/// `vista predict --json`: what was predicted, and the accuracy where labels are known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictSummary {
    /// The prediction file written.
    pub out: PathBuf,
    /// Images predicted (rows of the prediction file).
    pub images: usize,
    /// Images skipped as unreadable (`--on-bad-image skip`).
    pub skipped: usize,
    /// The test-time augmentation's name and the image size.
    pub tta: String,
    /// Side of the images given to the model, in pixels.
    pub size: u32,
    /// Accuracy against the labels, when the images have them.
    pub accuracy: Option<f64>,
    /// Correct predictions, when the images have labels.
    pub correct: Option<u64>,
}

/// One row of `vista bench models` (and of `xtask/bench/models.py`, PyTorch's side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBench {
    /// The architecture's name.
    pub model: String,
    /// Side of the square input images, in pixels.
    pub size: usize,
    /// Images per training step.
    pub batch: usize,
    /// The name of the compute backend that ran the benchmark.
    pub backend: String,
    /// Images per second; `None` where the model does not take that size.
    pub img_per_s: Option<f64>,
    /// `train` (forward, loss, backward, optimizer step) or `infer` (forward alone).
    #[serde(default = "train_mode")]
    pub mode: String,
    /// Channel multiplier of the network (1 = the published model).
    #[serde(default = "unit_width")]
    pub width: f64,
    /// Whether a ResNet had the small-image stem (3×3 stride-1 convolution, no max-pool).
    #[serde(default)]
    pub small_stem: bool,
    /// Threads the benchmark ran on, where known.
    #[serde(default)]
    pub threads: Option<usize>,
    /// The process's peak resident memory when the row was measured, in MiB (it includes
    /// the rows the same process measured before).
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
}

fn train_mode() -> String {
    "train".into()
}

fn unit_width() -> f64 {
    1.0
}
