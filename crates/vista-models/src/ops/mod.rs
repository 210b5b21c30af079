//! Workarounds for burn 0.21, kept apart from the architectures: the models call
//! [`conv2d`], [`batch_norm`], [`max_pool2d`] and [`dropout`] where they would call
//! burn's `Conv2d::forward`, `BatchNorm::forward`, `MaxPool2d::forward` and
//! `Dropout::forward`, with the same modules, parameters and records, so checkpoints and
//! the importer do not depend on them.
//! Each would retire with an upstream change:
//!
//! - `conv.rs` (feature `flex-kernels`, on by default): a convolution whose backward pass
//!   is im2col + GEMM image by image on `Autodiff<Flex>`, and whose forward pass writes
//!   its output layout directly on flex. burn's autodiff falls back to the generic
//!   `conv2d_backward` in burn-tensor's module ops for backends without their own (the
//!   same path reported slow for wgpu in tracel-ai/burn#2260); flex has none in 0.21.
//!   It retires when burn-flex implements `conv2d_x_backward`/`conv2d_weight_backward`
//!   natively. Only `Autodiff<Flex>` and `Flex` take it; every other backend, grouped or
//!   biased convolutions and other precisions run burn's op. Tested against burn's op
//!   (outputs and gradients).
//! - `norm.rs` (feature `flex-kernels`): batch norm folded into one per-channel scale and
//!   shift over `[N, C, H·W]` maps, because burn-flex walks the `[1, C, 1, 1]`
//!   broadcast of burn's `BatchNorm::forward` element by element. No upstream issue is
//!   filed yet; it retires when burn-flex vectorizes broadcasts over inner axes (or
//!   burn's `BatchNorm` folds its statistics the same way). Generic over `B` and tested
//!   against burn's module (outputs, gradients, running statistics).
//! - `pool.rs` (feature `flex-kernels`): max pooling that walks each plane directly and
//!   keeps each window's argmax for its own backward step, because burn-flex runs a 2-D
//!   pool as a 3-D one with per-element index arithmetic (6% of a ResNet-18 step at
//!   64 px, for the stem's one pool). No upstream issue is filed yet; it retires when
//!   burn-flex gets a 2-D fast path. Tested against burn's op (outputs, gradients).
//! - `sgd.rs` (feature `flex-kernels`): SGD's update (weight decay, momentum, Nesterov)
//!   in one in-place pass per parameter on flex, where tensor operations walk it six
//!   times; the training crate's SGD calls [`fused_sgd`] and keeps the tensor operations
//!   for other backends. It retires when burn's `Sgd` fuses its update on CPU backends
//!   (PyTorch's `foreach` SGD does). Tested against the same step in tensor operations.
//! - `dropout.rs` (always): masks from a per-thread generator seeded per step and shard,
//!   because burn's `Dropout` draws from the backend's one global generator, whose order
//!   of draws depends on thread timing when shards run forward at once. No upstream
//!   issue is filed yet; it retires when burn's `Dropout` (or `Tensor::random`) accepts a
//!   caller's generator, as PyTorch's functional dropout takes a `Generator`. It is not a
//!   speed workaround, so it stays on without `flex-kernels`: runs are reproducible on any
//!   backend.

#[cfg(feature = "flex-kernels")]
mod conv;
mod dropout;
#[cfg(feature = "flex-kernels")]
mod norm;
#[cfg(feature = "flex-kernels")]
mod pool;
#[cfg(feature = "flex-kernels")]
mod sgd;

#[cfg(feature = "flex-kernels")]
pub use conv::conv2d;
pub use dropout::{dropout, seed_dropout};
#[cfg(feature = "flex-kernels")]
pub use norm::batch_norm;
#[cfg(feature = "flex-kernels")]
pub use pool::max_pool2d;
#[cfg(feature = "flex-kernels")]
pub use sgd::{SgdStep, Unfused, fused_sgd};

#[cfg(not(feature = "flex-kernels"))]
mod generic {
    use burn::nn::BatchNorm;
    use burn::nn::conv::Conv2d;
    use burn::nn::pool::MaxPool2d;
    use burn::tensor::Tensor;
    use burn::tensor::backend::Backend;

    /// burn's `Conv2d::forward` of `[batch, channels, height, width]` maps.
    pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv.forward(x)
    }

    /// burn's `BatchNorm::forward` of `[batch, channels, height, width]` maps.
    pub fn batch_norm<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        bn.forward(x)
    }

    /// burn's `MaxPool2d::forward` of `[batch, channels, height, width]` maps.
    pub fn max_pool2d<B: Backend>(pool: &MaxPool2d, x: Tensor<B, 4>) -> Tensor<B, 4> {
        pool.forward(x)
    }

    /// SGD's settings for one step.
    #[derive(Debug, Clone, Copy)]
    pub struct SgdStep {
        /// The learning rate.
        pub lr: f64,
        /// The momentum μ.
        pub momentum: f64,
        /// L2 weight decay λ, added to the gradient as λ·p.
        pub weight_decay: f32,
        /// Nesterov momentum instead of the classic one.
        pub nesterov: bool,
    }

    /// The tensors of one parameter's step, handed back: parameter, gradient, velocity.
    pub type Unfused<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>, Option<Tensor<B, D>>);

    /// Without `flex-kernels` no step is fused: the tensors come back for the caller's
    /// tensor operations.
    pub fn fused_sgd<B: Backend, const D: usize>(
        param: Tensor<B, D>,
        grad: Tensor<B, D>,
        velocity: Option<Tensor<B, D>>,
        _step: SgdStep,
    ) -> Result<(Tensor<B, D>, Tensor<B, D>), Unfused<B, D>> {
        Err((param, grad, velocity))
    }
}

#[cfg(not(feature = "flex-kernels"))]
pub use generic::{SgdStep, Unfused, batch_norm, conv2d, fused_sgd, max_pool2d};
