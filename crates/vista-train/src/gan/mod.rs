//! Training a Wasserstein GAN (Arjovsky et al. 2017, Algorithm 1) on a dataset's
//! training images: after every `critic_steps` (5) critic steps one generator step, as
//! fastai's `GANLearner.wgan` switches them; the critic's weights clipped into
//! `[-clip, clip]` (0.01) after each of its steps; RMSprop at 5e-5 without momentum (the
//! paper's optimizer; fastai's example uses Adam with β1 = 0, `--optimizer adam`). The
//! critic scores a real and a generated batch in one pass and minimizes
//! `mean C(fake) - mean C(real)`; the generator minimizes `-mean C(fake)` (fastai's signs
//! are the opposite, which is the same game). Critic steps are counted across epochs.
//!
//! Why not WGAN-GP (Gulrajani et al. 2017): its penalty differentiates the norm of the
//! critic's gradient with respect to its input, a double backward. burn 0.21's autodiff
//! hands gradients out as tensors of the inner backend (`Tensor::grad` returns
//! `Tensor<B::InnerBackend, D>`), outside any graph, so they cannot be differentiated
//! again. Weight clipping needs only first derivatives.
//!
//! An epoch is one pass of the critic over the training images. A run folder holds
//! `gan.json` (the settings, channels resolved), `classes.txt`, `checkpoints/epoch-NNNN`
//! (both networks, both optimizers and `state.json`, renamed into place and named by
//! `checkpoints/latest`), `samples/epoch-NNNN.png` (one row per class, up to 16, from
//! the same noise every epoch), `losses.csv`, `gan_loss.png`, and at the end
//! `generator.json` (its epochs) and `generator.bin`, renamed into place last. Batches
//! and noise are seeded per `(seed, epoch, step)`, and a checkpoint records the data it
//! trained on, so a resumed run repeats what the uninterrupted one would have done.

mod config;
mod sample;
mod synthetic;
mod trainer;

pub use config::GanConfig;
pub use sample::{TrainedGan, all_grey, generate, load_gan};
pub use synthetic::{Samples, write_synthetic};
pub use trainer::train_gan;

/// The records of a GAN checkpoint.
const GENERATOR: &str = "generator";
const CRITIC: &str = "critic";
const OPTIM_GENERATOR: &str = "optim_generator";
const OPTIM_CRITIC: &str = "optim_critic";
