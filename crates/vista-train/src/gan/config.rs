//! A GAN run's settings (`GanConfig`), saved as `gan.json`.

use serde::{Deserialize, Serialize};
use vista_models::{CriticConfig, GeneratorConfig};

use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;

/// Every setting of a GAN run; saved as `gan.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GanConfig {
    /// Side of the generated images: 32 or 64.
    pub size: usize,
    /// Colour channels; `None`: 1 when every training image is grey, else 3.
    pub channels: Option<usize>,
    /// Length of the noise vector.
    pub noise: usize,
    /// Feature maps of the generator's last hidden layer and of the critic's first.
    pub features: usize,
    /// One generator for every class, told the class (the critic is told it too);
    /// off, the generator ignores classes.
    pub conditional: bool,
    /// Passes over the training images; a finished run resumed with more epochs trains on.
    pub epochs: usize,
    /// Images per critic or generator step; an epoch uses only full batches.
    pub batch_size: usize,
    /// Critic steps per generator step.
    pub critic_steps: usize,
    /// The critic's weights are clipped into `[-clip, clip]` after each of its steps.
    pub clip: f32,
    /// The optimizer of the generator and of the critic, each with its own state
    /// (RMSprop by default, as in the Wasserstein GAN paper).
    pub optimizer: OptimizerConfig,
    /// Learning rate of both optimizers, constant throughout training.
    pub lr: f64,
    /// Seed of the weights' initialization, the image order, the noise and the sample
    /// grids: the same seed gives the same run.
    pub seed: u64,
    /// Data-parallel shards per batch, each on its own thread and device.
    pub shards: usize,
}

impl Default for GanConfig {
    fn default() -> Self {
        Self {
            size: 32,
            channels: None,
            noise: 100,
            features: 64,
            conditional: true,
            epochs: 5,
            batch_size: 64,
            critic_steps: 5,
            clip: 0.01,
            optimizer: OptimizerConfig::rmsprop(),
            lr: 5e-5,
            seed: 42,
            shards: 1,
        }
    }
}

impl GanConfig {
    /// Checks every setting is in its range.
    pub fn validate(&self) -> Result<()> {
        let bad = |setting: &'static str, why: String| Err(Error::Invalid { setting, why });
        if !matches!(self.size, 32 | 64) {
            return bad(
                "size",
                format!("GAN image size must be 32 or 64, not {}", self.size),
            );
        }
        if let Some(c) = self.channels
            && c != 1
            && c != 3
        {
            return bad("channels", format!("GAN channels must be 1 or 3, not {c}"));
        }
        if self.batch_size < 2 || self.critic_steps == 0 || self.noise == 0 {
            return bad(
                "batch_size",
                "batch size >= 2, critic steps >= 1 and noise >= 1 are needed".into(),
            );
        }
        if self.features < 2 {
            return bad(
                "features",
                format!("GAN features must be at least 2, not {}", self.features),
            );
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return bad(
                "clip",
                format!("weight clipping bound {} must be positive", self.clip),
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("learning rate {} is not positive", self.lr));
        }
        Ok(())
    }

    pub(super) fn channels(&self) -> usize {
        self.channels.unwrap_or(3)
    }

    /// The generator this config builds for `classes` classes.
    pub fn generator(&self, classes: usize) -> GeneratorConfig {
        GeneratorConfig::new(self.size)
            .with_channels(self.channels())
            .with_noise(self.noise)
            .with_features(self.features)
            .with_num_classes(self.conditional.then_some(classes))
    }

    /// The critic this config builds for `classes` classes.
    pub fn critic(&self, classes: usize) -> CriticConfig {
        CriticConfig::new(self.size)
            .with_channels(self.channels())
            .with_features(self.features)
            .with_num_classes(self.conditional.then_some(classes))
    }
}
