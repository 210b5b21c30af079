//! fastai's classification head (`fastai.vision.learner.create_head`): concatenated
//! adaptive average and max pooling, then two `LinBnDrop` blocks —
//! BatchNorm → Dropout(0.25) → Linear(2·nf, 512, no bias) → ReLU →
//! BatchNorm → Dropout(0.5) → Linear(512, classes, no bias). Every body in this crate
//! (ResNet, Inception v3, EfficientNet-Lite0) takes it through its config's `head`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::ops::dropout;

/// How to build a [`FastaiHead`].
#[derive(Config, Debug)]
pub struct FastaiHeadConfig {
    /// Channels of the body's feature maps.
    pub in_features: usize,
    /// Number of classes, one logit each.
    pub num_classes: usize,
    /// Width of the hidden linear layer; default 512, as fastai's.
    #[config(default = 512)]
    pub hidden: usize,
    /// Dropout of the last block; the first uses half of it (fastai's `ps = 0.5`).
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// fastai's classification head: concatenated max and average pooling, then two
/// `LinBnDrop` blocks.
#[derive(Module, Debug)]
pub struct FastaiHead<B: Backend> {
    /// BatchNorm over the `2·in_features` pooled features.
    pub bn1: BatchNorm<B>,
    /// Dropout of the first block, at half the configured rate.
    pub drop1: Dropout,
    /// The linear layer (no bias) from the pooled features to the hidden width; ReLU
    /// follows.
    pub lin1: Linear<B>,
    /// BatchNorm over the hidden features.
    pub bn2: BatchNorm<B>,
    /// Dropout of the last block, at the configured rate.
    pub drop2: Dropout,
    /// The linear layer (no bias) from the hidden width to one logit per class.
    pub lin2: Linear<B>,
}

impl FastaiHeadConfig {
    /// Builds the head with freshly initialized weights on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> FastaiHead<B> {
        let pooled = 2 * self.in_features;
        FastaiHead {
            bn1: BatchNormConfig::new(pooled).init(device),
            drop1: DropoutConfig::new(self.dropout / 2.0).init(),
            lin1: LinearConfig::new(pooled, self.hidden)
                .with_bias(false)
                .init(device),
            bn2: BatchNormConfig::new(self.hidden).init(device),
            drop2: DropoutConfig::new(self.dropout).init(),
            lin2: LinearConfig::new(self.hidden, self.num_classes)
                .with_bias(false)
                .init(device),
        }
    }
}

impl<B: Backend> FastaiHead<B> {
    /// `[batch, channels, h, w]` feature maps -> `[batch, num_classes]` logits.
    pub fn forward(&self, f: Tensor<B, 4>) -> Tensor<B, 2> {
        let [b, c, h, w] = f.dims();
        let flat = f.reshape([b, c, h * w]);
        // fastai's AdaptiveConcatPool2d puts the max pool first.
        let max = flat.clone().max_dim(2).reshape([b, c]);
        let avg = flat.mean_dim(2).reshape([b, c]);
        let x = Tensor::cat(vec![max, avg], 1);
        let x = self.lin1.forward(dropout(&self.drop1, self.bn1.forward(x)));
        let x = relu(x);
        self.lin2.forward(dropout(&self.drop2, self.bn2.forward(x)))
    }
}

/// Global average pooling: `[batch, channels, h, w]` -> `[batch, channels]`.
pub fn global_avg_pool<B: Backend>(f: Tensor<B, 4>) -> Tensor<B, 2> {
    let [b, c, _, _] = f.dims();
    f.mean_dim(3).mean_dim(2).reshape([b, c])
}

/// A body's classifier: fastai's head when there is one, else global average pooling,
/// dropout (when given) and the linear layer. `[batch, c, h, w]` -> `[batch, classes]`.
pub(crate) fn classify<B: Backend>(
    f: Tensor<B, 4>,
    fc: Option<&Linear<B>>,
    head: Option<&FastaiHead<B>>,
    dropout: Option<&Dropout>,
) -> Tensor<B, 2> {
    if let Some(head) = head {
        return head.forward(f);
    }
    let pooled = global_avg_pool(f);
    let pooled = match dropout {
        Some(d) => crate::ops::dropout(d, pooled),
        None => pooled,
    };
    fc.expect("a model is built with a classifier")
        .forward(pooled)
}
