//! The GAN's files: its per-epoch and per-step records, the finished generator's
//! record, and the folder of generated images with its manifest and class consistency.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Means over one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanEpoch {
    /// 1-based.
    pub epoch: usize,
    /// The critic's estimate of the Wasserstein distance, `mean C(real) - mean C(fake)`,
    /// averaged over the epoch's critic steps; it falls as the generator improves.
    pub wasserstein: f32,
    /// The generator's loss, `-mean C(fake)`.
    pub gen_loss: f32,
    pub gen_steps: usize,
    /// Real images the critic saw per second.
    pub images_per_sec: f32,
    pub wall_s: f32,
}

impl GanEpoch {
    /// Column names of [`Self::table_row`].
    pub fn table_header() -> String {
        format!(
            "{:>5} {:>11} {:>9} {:>9} {:>8} {:>7}",
            "epoch", "wasserstein", "gen_loss", "gen_steps", "img/s", "time"
        )
    }

    /// This epoch as one line of the GAN's table.
    pub fn table_row(&self) -> String {
        format!(
            "{:>5} {:>11.5} {:>9.5} {:>9} {:>8.0} {:>7}",
            self.epoch,
            self.wasserstein,
            self.gen_loss,
            self.gen_steps,
            self.images_per_sec,
            crate::format_secs(self.wall_s)
        )
    }
}

/// One generator step and the critic steps before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GanStep {
    pub step: usize,
    pub epoch: usize,
    pub wasserstein: f32,
    pub gen_loss: f32,
}

/// `generator.json`: written before the finished `generator.bin`, so the weights are
/// always as old as it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorInfo {
    /// Epochs the generator trained.
    pub epochs: usize,
}

/// `synthetic.json`: which images are generated, and by what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticManifest {
    pub synthetic: bool,
    /// The GAN run and the generator file the images came from.
    pub run: PathBuf,
    pub generator: PathBuf,
    /// Epochs the generator had trained.
    pub epochs: usize,
    pub seed: u64,
    pub per_class: usize,
    pub size: usize,
    pub classes: Vec<String>,
    /// One entry per image: its path below the folder and its intended class.
    pub images: Vec<SyntheticImage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticImage {
    pub file: String,
    pub class: String,
}

/// `consistency.json`: how often a classifier trained on real images agrees with the
/// class each image was generated for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    pub classifier: PathBuf,
    pub overall: f64,
    pub per_class: Vec<(String, f64)>,
}
