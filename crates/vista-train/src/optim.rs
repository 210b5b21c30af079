//! The optimizers a run can choose, as one type the Learner holds and checkpoints:
//! AdamW (fastai's default: betas 0.9/0.99, eps 1e-5, decoupled weight decay 0.01) and
//! SGD with momentum; RMSprop for the Wasserstein GAN's critic and generator (the WGAN
//! paper's choice: no momentum).
//!
//! AdamW's β1 and SGD's momentum can move from step to step, as fastai's one-cycle moves
//! them (0.95 → 0.85 → 0.95; [`Optim::set_momentum`]). burn's `AdamW` and `Sgd` fix
//! them when built, so these two are written here as burn `SimpleOptimizer`s with the
//! same state records as burn's (checkpoints of either read the same): Adam's bias
//! correction divides by `1 − β1ᵗ` with the current β1, as fastai's and PyTorch's do.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate, Optimizer, RmsProp,
    RmsPropConfig, SimpleOptimizer,
};
use burn::record::{FullPrecisionSettings, Record, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
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
        /// Decay of the gradients' running mean (fastai's `mom`; 0.9 by default). A
        /// one-cycle schedule moves it 0.95 → 0.85 → 0.95 instead, as fastai's does;
        /// other schedules keep it.
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
        /// A one-cycle schedule moves it 0.95 → 0.85 → 0.95 instead, as fastai's does;
        /// other schedules keep it.
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
            } => {
                let adamw = ScheduledAdamW {
                    beta1: Momentum::new(f64::from(beta1)),
                    beta2,
                    eps,
                    weight_decay,
                };
                Optim::AdamW(OptimizerAdaptor::from(adamw.clone()), adamw)
            }
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
            } => {
                let sgd = ScheduledSgd {
                    momentum: Momentum::new(momentum),
                    weight_decay,
                    nesterov,
                };
                Optim::Sgd(OptimizerAdaptor::from(sgd.clone()), sgd)
            }
        }
    }
}

/// A momentum (SGD's, or Adam's β1) that the optimizer reads at every step and
/// [`Optim::set_momentum`] moves; the configured value is kept to return to.
#[derive(Debug, Clone)]
pub struct Momentum {
    current: Arc<AtomicU64>,
    configured: f64,
}

impl Momentum {
    fn new(value: f64) -> Self {
        Self {
            current: Arc::new(AtomicU64::new(value.to_bits())),
            configured: value,
        }
    }

    /// The value the next step uses.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.current.load(Ordering::Relaxed))
    }

    /// `value` for the next steps, or the configured one for `None`.
    fn set(&self, value: Option<f64>) {
        let v = value.unwrap_or(self.configured);
        self.current.store(v.to_bits(), Ordering::Relaxed);
    }

    /// A copy that moves on its own: a cloned optimizer does not steer this one.
    fn detached(&self) -> Self {
        Self {
            current: Arc::new(AtomicU64::new(self.get().to_bits())),
            configured: self.configured,
        }
    }
}

/// AdamW with decoupled weight decay, as burn's `AdamW` computes it, with β1 read from a
/// [`Momentum`] at every step.
#[derive(Debug, Clone)]
pub struct ScheduledAdamW {
    beta1: Momentum,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
}

impl<B: Backend> SimpleOptimizer<B> for ScheduledAdamW {
    type State<const D: usize> = AdamWState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let beta1 = self.beta1.get() as f32;
        let beta2 = self.beta2;
        let state = match state {
            Some(AdamWState { mut momentum }) => {
                momentum.moment_1 =
                    (momentum.moment_1.mul_scalar(beta1)).add(grad.clone().mul_scalar(1.0 - beta1));
                momentum.moment_2 = (momentum.moment_2.mul_scalar(beta2))
                    .add(grad.square().mul_scalar(1.0 - beta2));
                momentum.time += 1;
                momentum
            }
            None => AdaptiveMomentumState::new(
                1,
                grad.clone().mul_scalar(1.0 - beta1),
                grad.square().mul_scalar(1.0 - beta2),
            ),
        };
        let t = i32::try_from(state.time).unwrap_or(i32::MAX);
        let m = state.moment_1.clone().div_scalar(1.0 - beta1.powi(t));
        let v = state.moment_2.clone().div_scalar(1.0 - beta2.powi(t));
        let delta = m.div(v.sqrt().add_scalar(self.eps));
        let decay = lr * f64::from(self.weight_decay);
        let decayed = if decay == 0.0 {
            tensor
        } else {
            tensor.mul_scalar(1.0 - decay)
        };
        (decayed - delta.mul_scalar(lr), Some(AdamWState::new(state)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        let mut m = state.momentum;
        m.moment_1 = m.moment_1.to_device(device);
        m.moment_2 = m.moment_2.to_device(device);
        m.max_moment_2 = m.max_moment_2.map(|t| t.to_device(device));
        AdamWState::new(m)
    }
}

/// SGD with momentum (no dampening, optionally Nesterov's) and L2 weight decay, as
/// burn's `Sgd` computes it, with the momentum read from a [`Momentum`] at every step.
#[derive(Debug, Clone)]
pub struct ScheduledSgd {
    momentum: Momentum,
    weight_decay: f32,
    nesterov: bool,
}

/// [`ScheduledSgd`]'s state, laid out as burn's `SgdState` (an optional momentum state
/// holding the velocity), so a checkpoint reads the same.
#[derive(Record, Clone, Debug)]
pub struct SgdVelocity<B: Backend, const D: usize> {
    /// The velocity, once a step has run.
    pub momentum: Option<Velocity<B, D>>,
}

/// The running velocity of [`ScheduledSgd`].
#[derive(Record, Clone, Debug)]
pub struct Velocity<B: Backend, const D: usize> {
    /// Σ momentumᵏ · gradient over the past steps.
    pub velocity: Tensor<B, D>,
}

impl<B: Backend> SimpleOptimizer<B> for ScheduledSgd {
    type State<const D: usize> = SgdVelocity<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let mu = self.momentum.get();
        let settings = vista_models::SgdStep {
            lr,
            momentum: mu,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
        };
        let velocity = state.and_then(|s| s.momentum).map(|v| v.velocity);
        let (tensor, grad, velocity) =
            match vista_models::fused_sgd(tensor, grad, velocity, settings) {
                Ok((tensor, velocity)) => {
                    let state = SgdVelocity {
                        momentum: Some(Velocity { velocity }),
                    };
                    return (tensor, Some(state));
                }
                Err(unfused) => unfused,
            };
        let grad = if self.weight_decay > 0.0 {
            tensor.clone().mul_scalar(self.weight_decay).add(grad)
        } else {
            grad
        };
        let velocity = match velocity {
            Some(v) => v.mul_scalar(mu).add(grad.clone()),
            None => grad.clone(),
        };
        let update = if self.nesterov {
            velocity.clone().mul_scalar(mu).add(grad)
        } else {
            velocity.clone()
        };
        let state = SgdVelocity {
            momentum: Some(Velocity { velocity }),
        };
        (tensor - update.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        SgdVelocity {
            momentum: state.momentum.map(|v| Velocity {
                velocity: v.velocity.to_device(device),
            }),
        }
    }
}

/// An optimizer of either kind, with its state.
pub enum Optim<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// AdamW, from [`OptimizerConfig::AdamW`], and its settings (β1 shared with it).
    AdamW(OptimizerAdaptor<ScheduledAdamW, M, B>, ScheduledAdamW),
    /// SGD with momentum, from [`OptimizerConfig::Sgd`], and its settings (the momentum
    /// shared with it).
    Sgd(OptimizerAdaptor<ScheduledSgd, M, B>, ScheduledSgd),
    /// burn's RMSprop, from [`OptimizerConfig::RmsProp`].
    RmsProp(OptimizerAdaptor<RmsProp, M, B>),
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Clone for Optim<M, B> {
    /// A copy with the same state whose momentum moves on its own.
    fn clone(&self) -> Self {
        match self {
            Optim::AdamW(o, settings) => {
                let settings = ScheduledAdamW {
                    beta1: settings.beta1.detached(),
                    ..settings.clone()
                };
                let copy = OptimizerAdaptor::from(settings.clone()).load_record(o.to_record());
                Optim::AdamW(copy, settings)
            }
            Optim::Sgd(o, settings) => {
                let settings = ScheduledSgd {
                    momentum: settings.momentum.detached(),
                    ..settings.clone()
                };
                let copy = OptimizerAdaptor::from(settings.clone()).load_record(o.to_record());
                Optim::Sgd(copy, settings)
            }
            Optim::RmsProp(o) => Optim::RmsProp(o.clone()),
        }
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> std::fmt::Debug for Optim<M, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Optim::AdamW(..) => "Optim::AdamW",
            Optim::Sgd(..) => "Optim::Sgd",
            Optim::RmsProp(_) => "Optim::RmsProp",
        })
    }
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> Optim<M, B> {
    /// Updates `module` with `grads` at learning rate `lr` and returns it, advancing the
    /// optimizer's state.
    pub fn step(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        match self {
            Optim::AdamW(o, _) => o.step(lr, module, grads),
            Optim::Sgd(o, _) => o.step(lr, module, grads),
            Optim::RmsProp(o) => o.step(lr, module, grads),
        }
    }

    /// The momentum of the next steps (AdamW's β1, SGD's momentum): `Some` as a schedule
    /// gives it, `None` for the configured one. RMSprop's is fixed.
    pub fn set_momentum(&mut self, value: Option<f64>) {
        match self {
            Optim::AdamW(_, a) => a.beta1.set(value),
            Optim::Sgd(_, s) => s.momentum.set(value),
            Optim::RmsProp(_) => {}
        }
    }

    /// The momentum the next step uses (AdamW's β1, SGD's momentum); `None` for RMSprop.
    pub fn momentum(&self) -> Option<f64> {
        match self {
            Optim::AdamW(_, a) => Some(a.beta1.get()),
            Optim::Sgd(_, s) => Some(s.momentum.get()),
            Optim::RmsProp(_) => None,
        }
    }

    /// Writes the optimizer state to `path` (the recorder adds `.bin`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let recorder = RunRecorder::<FullPrecisionSettings>::new();
        let res = match self {
            Optim::AdamW(o, _) => recorder.record(o.to_record(), path.to_path_buf()),
            Optim::Sgd(o, _) => recorder.record(o.to_record(), path.to_path_buf()),
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
                Optim::AdamW(o, m) => Optim::AdamW(
                    o.load_record(
                        recorder
                            .load(p, device)
                            .map_err(|e| Error::record(path, e))?,
                    ),
                    m,
                ),
                Optim::Sgd(o, m) => Optim::Sgd(
                    o.load_record(
                        recorder
                            .load(p, device)
                            .map_err(|e| Error::record(path, e))?,
                    ),
                    m,
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

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::decay::WeightDecayConfig;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{AdamWConfig, SgdConfig};
    use burn::tensor::{Distribution, Tensor, Tolerance};

    use super::*;

    type T = Autodiff<Flex>;

    /// Three steps of `ours` and `burns` from the same weights on the same batches.
    fn after_steps<O1, O2>(mut ours: O1, mut burns: O2) -> (Linear<T>, Linear<T>)
    where
        O1: FnMut(Linear<T>, GradientsParams) -> Linear<T>,
        O2: FnMut(Linear<T>, GradientsParams) -> Linear<T>,
    {
        let device = Default::default();
        let start = LinearConfig::new(4, 3).init::<T>(&device);
        // burn initializes parameters on first use: use them once, so both copies start
        // from the same weights.
        let _ = start.weight.val();
        let _ = start.bias.as_ref().map(|b| b.val());
        let (mut a, mut b) = (start.clone(), start);
        for step in 0..3 {
            let x = Tensor::<T, 2>::random([5, 4], Distribution::Normal(0.0, 1.0), &device);
            let ga = a.forward(x.clone()).powi_scalar(2).sum().backward();
            let gb = b.forward(x).powi_scalar(2).sum().backward();
            a = ours(a.clone(), GradientsParams::from_grads(ga, &a));
            b = burns(b.clone(), GradientsParams::from_grads(gb, &b));
            let _ = step;
        }
        (a, b)
    }

    fn assert_same(a: &Linear<T>, b: &Linear<T>) {
        a.weight
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&b.weight.val().into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn adamw_and_sgd_at_a_fixed_momentum_step_as_burns_do() {
        let mut ours = OptimizerConfig::default().init::<T, Linear<T>>();
        let mut burns = AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.99)
            .with_epsilon(1e-5)
            .with_weight_decay(0.01)
            .init::<T, Linear<T>>();
        let (a, b) = after_steps(|m, g| ours.step(1e-2, m, g), |m, g| burns.step(1e-2, m, g));
        assert_same(&a, &b);

        let cfg = OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.01,
            nesterov: true,
        };
        let mut ours = cfg.init::<T, Linear<T>>();
        let mut burns = SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(0.9)
                    .with_dampening(0.0)
                    .with_nesterov(true),
            ))
            .with_weight_decay(Some(WeightDecayConfig::new(0.01)))
            .init::<T, Linear<T>>();
        let (a, b) = after_steps(|m, g| ours.step(0.1, m, g), |m, g| burns.step(0.1, m, g));
        assert_same(&a, &b);
    }

    #[test]
    fn a_moved_beta1_changes_the_step_and_a_clone_moves_on_its_own() {
        let mut moved = OptimizerConfig::default().init::<T, Linear<T>>();
        let mut fixed = OptimizerConfig::default().init::<T, Linear<T>>();
        let copy = moved.clone();
        moved.set_momentum(Some(0.85));
        assert_eq!(moved.momentum(), Some(0.85));
        assert_eq!(copy.momentum(), Some(0.9_f32 as f64));
        let (a, b) = after_steps(|m, g| moved.step(1e-2, m, g), |m, g| fixed.step(1e-2, m, g));
        let diff = (a.weight.val() - b.weight.val()).abs().max().into_scalar();
        assert!(diff > 1e-6, "β1 0.85 stepped as 0.9 did");
        moved.set_momentum(None);
        assert_eq!(moved.momentum(), Some(0.9_f32 as f64));
    }
}
