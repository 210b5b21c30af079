//! ResNet-18/34/50 (He et al. 2016, "Deep Residual Learning for Image Recognition"),
//! following torchvision's `models/resnet.py` so its `state_dict` keys map one-to-one:
//! `conv1`, `bn1`, `layer{1..4}.{i}.conv{1,2,3}` / `bn{1,2,3}`, `fc`. The bottleneck puts
//! the stride on its 3x3 convolution ("ResNet v1.5", as torchvision does).
//!
//! Where vista differs: torchvision's `downsample.0` / `downsample.1` are named
//! `downsample.conv` / `downsample.bn` here (the importer renames them); an optional
//! small-image stem (3x3 stride-1 convolution, no max-pool) for 28–64 px inputs; and a
//! width multiplier on every layer's channels for CPU-sized models.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::error::{Error, Result};
use crate::head::{FastaiHead, FastaiHeadConfig, classify};
use crate::ops::batch_norm;
use crate::ops::conv2d;

/// torchvision's conv initialization: Kaiming normal, fan-out, ReLU gain.
fn kaiming() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Conv2dConfig {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(kaiming())
}

/// The 1x1 convolution and batch norm that match the shortcut to a block's output.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// The 1x1 convolution, with the block's stride, to the block's output channels.
    pub conv: Conv2d<B>,
    /// BatchNorm after the convolution.
    pub bn: BatchNorm<B>,
}

/// A residual block: basic (two 3x3 convolutions) or bottleneck (1x1, 3x3, 1x1).
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// The first convolution: 3x3 with the block's stride (basic) or the 1x1 reduction
    /// (bottleneck).
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`; ReLU follows.
    pub bn1: BatchNorm<B>,
    /// The second convolution: 3x3, with the block's stride in a bottleneck.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// Present in bottleneck blocks only.
    pub conv3: Option<Conv2d<B>>,
    /// BatchNorm after `conv3` (bottleneck blocks only).
    pub bn3: Option<BatchNorm<B>>,
    /// The shortcut's projection, present when the block changes the stride or the
    /// channels.
    pub downsample: Option<Downsample<B>>,
}

impl<B: Backend> Block<B> {
    fn new(cin: usize, planes: usize, stride: usize, bottleneck: bool, device: &B::Device) -> Self {
        let expansion = if bottleneck { 4 } else { 1 };
        let cout = planes * expansion;
        let downsample = (stride != 1 || cin != cout).then(|| Downsample {
            conv: conv(cin, cout, 1, stride, 0).init(device),
            bn: BatchNormConfig::new(cout).init(device),
        });
        if bottleneck {
            Self {
                conv1: conv(cin, planes, 1, 1, 0).init(device),
                bn1: BatchNormConfig::new(planes).init(device),
                conv2: conv(planes, planes, 3, stride, 1).init(device),
                bn2: BatchNormConfig::new(planes).init(device),
                conv3: Some(conv(planes, cout, 1, 1, 0).init(device)),
                bn3: Some(BatchNormConfig::new(cout).init(device)),
                downsample,
            }
        } else {
            Self {
                conv1: conv(cin, planes, 3, stride, 1).init(device),
                bn1: BatchNormConfig::new(planes).init(device),
                conv2: conv(planes, planes, 3, 1, 1).init(device),
                bn2: BatchNormConfig::new(planes).init(device),
                conv3: None,
                bn3: None,
                downsample,
            }
        }
    }

    /// `[batch, in_channels, h, w]` -> `[batch, out_channels, h / stride, w / stride]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(d) => batch_norm(&d.bn, conv2d(&d.conv, x.clone())),
            None => x.clone(),
        };
        let out = relu(batch_norm(&self.bn1, conv2d(&self.conv1, x)));
        let out = batch_norm(&self.bn2, conv2d(&self.conv2, out));
        let out = match (&self.conv3, &self.bn3) {
            (Some(c3), Some(b3)) => batch_norm(b3, conv2d(c3, relu(out))),
            _ => out,
        };
        relu(out + identity)
    }
}

/// Which ResNet.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    /// ResNet-18: basic blocks, 2, 2, 2 and 2 per stage.
    R18,
    /// ResNet-34: basic blocks, 3, 4, 6 and 3 per stage.
    R34,
    /// ResNet-50: bottleneck blocks, 3, 4, 6 and 3 per stage.
    R50,
}

impl ResNetDepth {
    /// Blocks per stage and whether they are bottlenecks.
    fn layout(self) -> ([usize; 4], bool) {
        match self {
            ResNetDepth::R18 => ([2, 2, 2, 2], false),
            ResNetDepth::R34 => ([3, 4, 6, 3], false),
            ResNetDepth::R50 => ([3, 4, 6, 3], true),
        }
    }
}

/// The classifier on top of the body.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// torchvision's: global average pool, then one linear layer named `fc`.
    Linear,
    /// fastai's `create_head` (see [`FastaiHead`]).
    Fastai,
}

/// How to build a [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Which ResNet: 18, 34 or 50 layers.
    pub depth: ResNetDepth,
    /// Number of classes, one logit each; at least 1.
    pub num_classes: usize,
    /// Channels of the input images; default 3 (RGB), at least 1.
    #[config(default = 3)]
    pub in_channels: usize,
    /// 3x3 stride-1 first convolution and no max-pool, for 28–64 px inputs.
    #[config(default = false)]
    pub small_stem: bool,
    /// Multiplies every layer's channel count (1.0 = the published model).
    #[config(default = 1.0)]
    pub width: f64,
    /// The classifier on the body: torchvision's `fc` (the default) or fastai's head.
    #[config(default = "HeadKind::Linear")]
    pub head: HeadKind,
}

/// A ResNet classifier.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// The stem's 7x7 stride-2 convolution (3x3 stride 1 with the small stem).
    pub conv1: Conv2d<B>,
    /// BatchNorm after the stem convolution; ReLU follows.
    pub bn1: BatchNorm<B>,
    /// The stem's 3x3 stride-2 max pool (absent with the small stem).
    pub maxpool: Option<MaxPool2d>,
    /// The first stage's blocks (64 planes at width 1, stride 1).
    pub layer1: Vec<Block<B>>,
    /// The second stage's blocks (128 planes at width 1; the first block has stride 2).
    pub layer2: Vec<Block<B>>,
    /// The third stage's blocks (256 planes at width 1; the first block has stride 2).
    pub layer3: Vec<Block<B>>,
    /// The fourth stage's blocks (512 planes at width 1; the first block has stride 2).
    pub layer4: Vec<Block<B>>,
    /// torchvision's head (absent with the fastai head).
    pub fc: Option<Linear<B>>,
    /// fastai's head, when the config asks for it (absent with `fc`).
    pub head: Option<FastaiHead<B>>,
}

impl ResNetConfig {
    /// Channels of the four stages' blocks (before the bottleneck expansion).
    pub fn planes(&self) -> [usize; 4] {
        [64, 128, 256, 512].map(|p| ((p as f64 * self.width).round() as usize).max(1))
    }

    /// Channels the body hands to the head.
    pub fn body_channels(&self) -> usize {
        let (_, bottleneck) = self.depth.layout();
        self.planes()[3] * if bottleneck { 4 } else { 1 }
    }

    /// Builds the model with freshly initialized weights (Kaiming normal for the
    /// convolutions, as torchvision's) on `device`; fails unless the width, the class
    /// count and the input channels are positive.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ResNet<B>> {
        if !(self.width > 0.0 && self.width.is_finite())
            || self.num_classes == 0
            || self.in_channels == 0
        {
            return Err(Error::Config(format!(
                "ResNet needs width > 0, classes > 0 and input channels > 0 (got {}, {}, {})",
                self.width, self.num_classes, self.in_channels
            )));
        }
        let (blocks, bottleneck) = self.depth.layout();
        let planes = self.planes();
        let stem = planes[0];
        let (conv1, maxpool) = if self.small_stem {
            (conv(self.in_channels, stem, 3, 1, 1), None)
        } else {
            let pool = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init();
            (conv(self.in_channels, stem, 7, 2, 3), Some(pool))
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let mut cin = stem;
        let mut stages = Vec::new();
        for (i, (&n, &p)) in blocks.iter().zip(&planes).enumerate() {
            let stride = if i == 0 { 1 } else { 2 };
            let stage: Vec<Block<B>> = (0..n)
                .map(|j| {
                    let b = Block::new(cin, p, if j == 0 { stride } else { 1 }, bottleneck, device);
                    cin = p * expansion;
                    b
                })
                .collect();
            stages.push(stage);
        }
        let [layer1, layer2, layer3, layer4]: [Vec<Block<B>>; 4] = stages
            .try_into()
            .unwrap_or_else(|_| unreachable!("four stages"));
        let (fc, head) = match self.head {
            HeadKind::Linear => (
                Some(LinearConfig::new(cin, self.num_classes).init(device)),
                None,
            ),
            HeadKind::Fastai => (
                None,
                Some(FastaiHeadConfig::new(cin, self.num_classes).init(device)),
            ),
        };
        Ok(ResNet {
            conv1: conv1.init(device),
            bn1: BatchNormConfig::new(stem).init(device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            fc,
            head,
        })
    }
}

impl<B: Backend> ResNet<B> {
    /// Feature maps of the body: `[batch, channels, h, w]` -> `[batch, body_channels, h', w']`
    /// with `h' = h / 32` (`h / 8` with the small stem).
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = relu(batch_norm(&self.bn1, conv2d(&self.conv1, x)));
        if let Some(pool) = &self.maxpool {
            x = crate::ops::max_pool2d(pool, x);
        }
        for stage in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            for block in stage {
                x = block.forward(x);
            }
        }
        x
    }

    /// Class logits: `[batch, channels, h, w]` -> `[batch, num_classes]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        classify(self.features(x), self.fc.as_ref(), self.head.as_ref(), None)
    }
}
