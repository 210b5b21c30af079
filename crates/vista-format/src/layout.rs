//! Where each file of a folder vista writes lives: one function per file, so no other
//! crate (nor xtask) spells a run folder's file names.
//!
//! A model file is named without its extension where burn's recorder adds `.bin`
//! itself ([`RunDir::model_stem`]), and with it where vista reads the bytes.

use std::path::{Path, PathBuf};

/// The folder of one checkpoint, `checkpoints/epoch-NNNN`: written under a temporary
/// name and renamed into place whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointDir(PathBuf);

impl CheckpointDir {
    /// The checkpoint folder at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The run's position (`RunState` or the GAN's state) at this checkpoint.
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }
    /// A network's record without burn's `.bin` extension, e.g. `model`, `generator`.
    pub fn stem(&self, network: &str) -> PathBuf {
        self.0.join(network)
    }
    /// A network's record as a file, `<network>.bin`.
    pub fn file(&self, network: &str) -> PathBuf {
        self.0.join(format!("{network}.bin"))
    }
}

/// The checkpoint name of an epoch (1-based): `epoch-0007`.
pub fn checkpoint_name(epoch: usize) -> String {
    format!("epoch-{epoch:04}")
}

/// Whether `name` is a checkpoint folder's name, `epoch-` and digits: the only thing
/// `checkpoints/latest` may name, since a run folder may come from someone else.
pub fn is_checkpoint_name(name: &str) -> bool {
    name.strip_prefix("epoch-")
        .is_some_and(|d| !d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// What a training run (classifier or GAN) keeps its checkpoints in.
pub trait Checkpointed {
    /// The run's root folder.
    fn root(&self) -> &Path;
    /// `checkpoints/`.
    fn checkpoints(&self) -> PathBuf {
        self.root().join("checkpoints")
    }
    /// `checkpoints/latest`: the name of the newest complete checkpoint.
    fn latest(&self) -> PathBuf {
        self.checkpoints().join("latest")
    }
    /// `checkpoints/<name>`.
    fn checkpoint(&self, name: &str) -> CheckpointDir {
        CheckpointDir::new(self.checkpoints().join(name))
    }
    /// The lock file that keeps a second process out of the folder.
    fn lock(&self) -> PathBuf {
        self.root().join(".lock")
    }
}

/// A classifier's run folder (`vista train --out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir(PathBuf);

impl RunDir {
    /// The run folder at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The `TrainConfig` the run was started with.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    /// Class names in label order.
    pub fn classes(&self) -> PathBuf {
        self.0.join("classes.txt")
    }
    /// The finished model without its extension (burn's recorder adds `.bin`).
    pub fn model_stem(&self) -> PathBuf {
        self.0.join("model")
    }
    /// The finished model, `model.bin`.
    pub fn model(&self) -> PathBuf {
        self.0.join("model.bin")
    }
    /// The finished model's scores on the validation set ([`crate::ValidReport`]).
    pub fn valid_report(&self) -> PathBuf {
        self.0.join("valid_report.json")
    }
    /// The finished model's confusion matrix on the validation set, as a heat map.
    pub fn valid_confusion_png(&self) -> PathBuf {
        self.0.join("valid_confusion.png")
    }
    /// The best epoch's model by the run's monitor, `best.safetensors` (PyTorch's names;
    /// its metadata's `epoch` says which epoch it is).
    pub fn best_model(&self) -> PathBuf {
        self.0.join("best.safetensors")
    }
    /// Which epoch `best.safetensors` holds ([`crate::BestEpoch`]), `best.json`.
    pub fn best_json(&self) -> PathBuf {
        self.0.join("best.json")
    }
    /// One row per epoch ([`crate::EpochMetrics`]), JSON.
    pub fn metrics_json(&self) -> PathBuf {
        self.0.join("metrics.json")
    }
    /// The same rows as CSV.
    pub fn metrics_csv(&self) -> PathBuf {
        self.0.join("metrics.csv")
    }
    /// One row per optimizer step ([`crate::StepRecord`]), CSV.
    pub fn losses_csv(&self) -> PathBuf {
        self.0.join("losses.csv")
    }
    /// Training and validation loss against steps.
    pub fn loss_png(&self) -> PathBuf {
        self.0.join("loss.png")
    }
    /// Learning rate against steps.
    pub fn lr_png(&self) -> PathBuf {
        self.0.join("lr.png")
    }
    /// The LR finder's record of a phase whose rate it chose
    /// ([`crate::LrFindRecord`]).
    pub fn lr_find_record(&self, phase: &str) -> PathBuf {
        self.0.join(format!("lr_find_{phase}.json"))
    }
    /// The LR finder's plot of that phase.
    pub fn lr_find_plot(&self, phase: &str) -> PathBuf {
        self.0.join(format!("lr_find_{phase}.png"))
    }
}

impl RunDir {
    /// In a fold's run folder of out-of-fold cleaning: the fold's predictions of the
    /// images it held out.
    pub fn held_out_predictions(&self) -> PathBuf {
        self.0.join("oof.csv")
    }
}

impl Checkpointed for RunDir {
    fn root(&self) -> &Path {
        &self.0
    }
}

/// A GAN's run folder (`vista gan train --out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GanDir(PathBuf);

impl GanDir {
    /// The GAN's run folder at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The `GanConfig`.
    pub fn config(&self) -> PathBuf {
        self.0.join("gan.json")
    }
    /// Class names in label order.
    pub fn classes(&self) -> PathBuf {
        self.0.join("classes.txt")
    }
    /// One row per epoch ([`crate::GanEpoch`]).
    pub fn epochs_json(&self) -> PathBuf {
        self.0.join("epochs.json")
    }
    /// One row per generator step ([`crate::GanStep`]), CSV.
    pub fn losses_csv(&self) -> PathBuf {
        self.0.join("losses.csv")
    }
    /// The critic's Wasserstein estimate and the generator's loss against generator steps.
    pub fn loss_png(&self) -> PathBuf {
        self.0.join("gan_loss.png")
    }
    /// The per-epoch sample grids.
    pub fn samples(&self) -> PathBuf {
        self.0.join("samples")
    }
    /// The sample grid after `epoch` (1-based).
    pub fn sample_grid(&self, epoch: usize) -> PathBuf {
        self.samples().join(format!("epoch-{epoch:04}.png"))
    }
    /// The finished generator's record ([`crate::GeneratorInfo`]).
    pub fn generator_info(&self) -> PathBuf {
        self.0.join("generator.json")
    }
    /// The finished generator without its extension.
    pub fn generator_stem(&self) -> PathBuf {
        self.0.join("generator")
    }
    /// The finished generator, `generator.bin`.
    pub fn generator(&self) -> PathBuf {
        self.0.join("generator.bin")
    }
}

impl Checkpointed for GanDir {
    fn root(&self) -> &Path {
        &self.0
    }
}

/// The LR finder's output folder (`vista lr-find --out`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LrFindDir(PathBuf);

impl LrFindDir {
    /// The LR finder's output folder at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The sweep and its suggestions ([`crate::LrFindRecord`]).
    pub fn record(&self) -> PathBuf {
        self.0.join("lr_find.json")
    }
    /// The sweep's loss against learning rate, with the suggestions marked.
    pub fn plot(&self) -> PathBuf {
        self.0.join("lr_find.png")
    }
}

/// `vista evaluate --out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalDir(PathBuf);

impl EvalDir {
    /// The evaluation folder at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// [`crate::Evaluation`] as JSON.
    pub fn evaluation_json(&self) -> PathBuf {
        self.0.join("evaluation.json")
    }
    /// The same, for people.
    pub fn evaluation_txt(&self) -> PathBuf {
        self.0.join("evaluation.txt")
    }
    /// The confusion matrix as a heat map.
    pub fn confusion_png(&self) -> PathBuf {
        self.0.join("confusion.png")
    }
    /// The images with the highest loss, captioned, in a grid.
    pub fn top_losses_png(&self) -> PathBuf {
        self.0.join("top_losses.png")
    }
}

/// `vista clean detect --out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanDir(PathBuf);

impl CleanDir {
    /// The cleaning folder at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The flags ([`crate::Manifest`]) for tools.
    pub fn flags_json(&self) -> PathBuf {
        self.0.join("flags.json")
    }
    /// The same flags for people.
    pub fn flags_csv(&self) -> PathBuf {
        self.0.join("flags.csv")
    }
    /// The predictions of the training images the flags come from (out-of-fold, or a
    /// given run's).
    pub fn predictions(&self) -> PathBuf {
        self.0.join("predictions.csv")
    }
    /// How well the flags found deliberately flipped labels ([`crate::DetectionReport`]).
    pub fn detection_json(&self) -> PathBuf {
        self.0.join("detection.json")
    }
    /// The contact sheet of one reason, e.g. `likely_mislabelled.png`.
    pub fn contact_sheet(&self, reason: crate::Reason) -> PathBuf {
        self.0.join(format!("{}.png", reason.name()))
    }
}

/// The manifest of a folder of generated images ([`SyntheticDir::manifest`]).
pub const SYNTHETIC_MANIFEST: &str = "synthetic.json";
/// The class consistency of a folder of generated images.
pub const CONSISTENCY_FILE: &str = "consistency.json";

/// `vista gan sample --out`: one folder per class and the manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticDir(PathBuf);

impl SyntheticDir {
    /// The folder of generated images at `path`; nothing is read or created.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Which images are generated and by what ([`crate::SyntheticManifest`]).
    pub fn manifest(&self) -> PathBuf {
        self.0.join(SYNTHETIC_MANIFEST)
    }
    /// Class consistency ([`crate::Consistency`]).
    pub fn consistency(&self) -> PathBuf {
        self.0.join(CONSISTENCY_FILE)
    }
    /// The `index`-th image of a class, relative to the folder.
    pub fn image_name(class: &str, index: usize) -> String {
        format!("{class}/gan-{index:05}.png")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_round_trip_and_nothing_else_passes() {
        assert!(is_checkpoint_name(&checkpoint_name(7)));
        assert_eq!(checkpoint_name(7), "epoch-0007");
        for bad in [
            "epoch-",
            "epoch-../x",
            "latest",
            "epoch-1234567890",
            "epoch-1a",
        ] {
            assert!(!is_checkpoint_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_run_folders_files_stay_inside_it() {
        let run = RunDir::new("/r");
        for p in [
            run.config(),
            run.classes(),
            run.model(),
            run.metrics_json(),
            run.latest(),
            run.checkpoint("epoch-0001").state(),
        ] {
            assert!(p.starts_with("/r"), "{}", p.display());
        }
        assert_eq!(run.model_stem().with_extension("bin"), run.model());
    }
}
