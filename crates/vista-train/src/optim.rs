//! The optimizers a run can choose, as one type the Learner holds and checkpoints:
//! AdamW (fastai's default: betas 0.9/0.99, eps 1e-5, decoupled weight decay 0.01) and
//! SGD with momentum; RMSprop for the Wasserstein GAN's critic and generator (the WGAN
//! paper's choice: no momentum).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{
    AdamW, AdamWConfig, GradientsParams, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use burn::record::{FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::record::RunRecorder;

use crate::error::{Error, Result};

/// Which optimizer a run trains with, and its hyperparameters (the learning rate comes
/// from the schedule); saved in the run's configuration under `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Adam with decoupled weight decay, fastai's default optimizer.
    AdamW {
        /// Decay of the gradients' running mean (fastai's `mom`; 0.9 by default).
        beta1: f32,
        /// Decay of the squared gradients' running mean (fastai's `sqr_mom`; 0.99 by
        /// default).
        beta2: f32,
        /// Added to the denominator for numerical stability (1e-5 by default, as in fastai).
        eps: f32,
        /// Decoupled weight decay, scaled by the learning rate (fastai's `wd`; 0.01 by
        /// default).
        weight_decay: f32,
    },
    /// Stochastic gradient descent with momentum (fastai's `SGD`, with L2 weight decay).
    Sgd {
        /// Momentum of the update (fastai's `mom`; 0.9 by default), without dampening.
        momentum: f64,
        /// L2 weight decay added to the gradient; 0 turns it off.
        weight_decay: f32,
        /// Uses Nesterov momentum instead of the classic one.
        nesterov: bool,
    },
    /// PyTorch's `RMSprop` (smoothing `alpha`, `eps` added to the root, optional
    /// momentum); no weight decay.
    RmsProp {
        /// Decay of the squared gradients' running mean (0.99 by default).
        alpha: f32,
        /// Added to the root of that mean for numerical stability (1e-8 by default).
        eps: f32,
        /// Momentum of the update; 0 (the default) uses none.
        momentum: f32,
    },
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-5,
            weight_decay: 0.01,
        }
    }
}

impl OptimizerConfig {
    /// SGD as fastai's `SGD(mom=0.9)` with weight decay.
    pub fn sgd() -> Self {
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.01,
            nesterov: false,
        }
    }

    /// RMSprop as the WGAN paper runs it: PyTorch's defaults (alpha 0.99, eps 1e-8),
    /// no momentum.
    pub fn rmsprop() -> Self {
        OptimizerConfig::RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
        }
    }

    /// A new optimizer of this kind for a model of type `M`, with empty state.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(&self) -> Optim<M, B> {
        match *self {
            OptimizerConfig::RmsProp {
                alpha,
                eps,
                momentum,
            } => Optim::RmsProp(
                RmsPropConfig::new()
                    .with_alpha(alpha)
                    .with_epsilon(eps)
                    .with_momentum(momentum)
                    .init(),
            ),
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Optim::AdamW(
                AdamWConfig::new()
                    .with_beta_1(beta1)
                    .with_beta_2(beta2)
                    .with_epsilon(eps)
                    .with_weight_decay(weight_decay)
                    .init(),
            ),
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => Optim::Sgd(
                SgdConfig::new()
                    .with_momentum(Some(
                        MomentumConfig::new()
                            .with_momentum(momentum)
                            .with_dampening(0.0)
                            .with_nesterov(nesterov),
                    ))
                    .with_weight_decay(
                        (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay)),
                    )
                    .init(),
            ),
        }
    }
}

/// An optimizer of either kind, with its state.
#[derive(Clone)]
pub enum Optim<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// burn's AdamW, from [`OptimizerConfig::AdamW`].
    AdamW(OptimizerAdaptor<AdamW, M, B>),
    /// burn's SGD with momentum, from [`OptimizerConfig::Sgd`].
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>),
    /// burn's RMSprop, from [`OptimizerConfig::RmsProp`].
    RmsProp(OptimizerAdaptor<RmsProp, M, B>),
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> std::fmt::Debug for Optim<M, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Optim::AdamW(_) => "Optim::AdamW",
            Optim::Sgd(_) => "Optim::Sgd",
            Optim::RmsProp(_) => "Optim::RmsProp",
        })
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optim<M, B> {
    /// Updates `module` with `grads` at learning rate `lr` and returns it, advancing the
    /// optimizer's state.
    pub fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        match self {
            Optim::AdamW(o) => o.step(lr, module, grads),
            Optim::Sgd(o) => o.step(lr, module, grads),
            Optim::RmsProp(o) => o.step(lr, module, grads),
        }
    }

    /// Writes the optimizer state to `path` (the recorder adds `.bin`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let recorder = RunRecorder::<FullPrecisionSettings>::new();
        let res = match self {
            Optim::AdamW(o) => recorder.record(o.to_record(), path.to_path_buf()),
            Optim::Sgd(o) => recorder.record(o.to_record(), path.to_path_buf()),
            Optim::RmsProp(o) => recorder.record(o.to_record(), path.to_path_buf()),
        };
        res.map_err(|e| Error::record(path, e))
    }

    /// This optimizer with the state [`Optim::save`] wrote to `path` (the recorder adds
    /// `.bin`) loaded onto `device`; a state that does not fit the model is an error.
    pub fn load(self, path: &Path, device: &B::Device) -> Result<Self> {
        let recorder = RunRecorder::<FullPrecisionSettings>::new();
        let p = path.to_path_buf();
        crate::record::load_checked(path, || {
            Ok(match self {
                Optim::AdamW(o) => Optim::AdamW(
                    o.load_record(
                        recorder
                            .load(p, device)
                            .map_err(|e| Error::record(path, e))?,
                    ),
                ),
                Optim::Sgd(o) => Optim::Sgd(
                    o.load_record(
                        recorder
                            .load(p, device)
                            .map_err(|e| Error::record(path, e))?,
                    ),
                ),
                Optim::RmsProp(o) => Optim::RmsProp(
                    o.load_record(
                        recorder
                            .load(p, device)
                            .map_err(|e| Error::record(path, e))?,
                    ),
                ),
            })
        })
    }
}
