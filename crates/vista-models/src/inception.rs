//! Inception v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for
//! Computer Vision"), following torchvision's `models/inception.py` module for module,
//! so its `state_dict` keys (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.*`,
//! `AuxLogits.fc.*`, `fc.*`, ...) load; the importer lower-cases the capitalized module
//! names (`conv2d_1a_3x3`, `mixed_5b`, `aux_logits`) to Rust's field style.
//!
//! Where vista differs: a width multiplier scales every convolution's channels (1.0 is
//! the published model); the auxiliary classifier is optional and off by default.
//! Smallest input: 75x75 without the auxiliary head (torchvision's own bound); the
//! auxiliary head needs the 17x17 grid of a 299x299 input. `transform_input` re-scales
//! ImageNet-normalized input the way torchvision's pretrained Inception expects.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

use crate::head::{FastaiHead, FastaiHeadConfig, classify, global_avg_pool};
use crate::ops::batch_norm;
use crate::ops::conv2d;
use crate::resnet::HeadKind;

/// torchvision's `BasicConv2d`: convolution without bias, BatchNorm (ε = 1e-3), ReLU.
#[derive(Module, Debug)]
pub struct BasicConv<B: Backend> {
    /// The convolution.
    pub conv: Conv2d<B>,
    /// BatchNorm (ε = 1e-3) after the convolution.
    pub bn: BatchNorm<B>,
}

/// Builds `BasicConv`s with the width multiplier applied to output channels.
struct Maker<'a, B: Backend> {
    width: f64,
    device: &'a B::Device,
}

impl<B: Backend> Maker<'_, B> {
    fn ch(&self, c: usize) -> usize {
        ((c as f64 * self.width).round() as usize).max(1)
    }

    /// A convolution from `cin` actual channels to `cout` published channels.
    fn conv(
        &self,
        cin: usize,
        cout: usize,
        k: [usize; 2],
        stride: usize,
        pad: [usize; 2],
    ) -> BasicConv<B> {
        let cout = self.ch(cout);
        BasicConv {
            conv: Conv2dConfig::new([cin, cout], k)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]))
                .with_bias(false)
                .init(self.device),
            bn: BatchNormConfig::new(cout)
                .with_epsilon(1e-3)
                .init(self.device),
        }
    }

    fn c1(&self, cin: usize, cout: usize) -> BasicConv<B> {
        self.conv(cin, cout, [1, 1], 1, [0, 0])
    }
}

impl<B: Backend> BasicConv<B> {
    /// Convolution, BatchNorm and ReLU: `[batch, cin, h, w]` -> `[batch, cout, h', w']`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(batch_norm(&self.bn, conv2d(&self.conv, x)))
    }

    fn out(&self) -> usize {
        self.bn.gamma.dims()[0]
    }
}

fn avg3<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
        .forward(x)
}

fn max3s2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let pool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    crate::ops::max_pool2d(&pool, x)
}

/// torchvision's `InceptionA` (Mixed_5b to 5d, on the 35x35 grid): 1x1, 5x5, double
/// 3x3 and pooling branches, concatenated. Channel counts below are the published
/// ones, which the width multiplier scales.
#[derive(Module, Debug)]
pub struct InceptionA<B: Backend> {
    /// The 1x1 branch (64 channels).
    pub branch1x1: BasicConv<B>,
    /// The 5x5 branch's 1x1 reduction (48 channels).
    pub branch5x5_1: BasicConv<B>,
    /// The 5x5 branch's 5x5 convolution (64 channels).
    pub branch5x5_2: BasicConv<B>,
    /// The double-3x3 branch's 1x1 reduction (64 channels).
    pub branch3x3dbl_1: BasicConv<B>,
    /// The double-3x3 branch's first 3x3 convolution (96 channels).
    pub branch3x3dbl_2: BasicConv<B>,
    /// The double-3x3 branch's second 3x3 convolution (96 channels).
    pub branch3x3dbl_3: BasicConv<B>,
    /// The 1x1 convolution after a 3x3 average pool (`pool_features` channels: 32 in
    /// Mixed_5b, 64 in 5c and 5d).
    pub branch_pool: BasicConv<B>,
}

impl<B: Backend> InceptionA<B> {
    fn new(m: &Maker<'_, B>, cin: usize, pool_features: usize) -> Self {
        let b5 = m.c1(cin, 48);
        let d1 = m.c1(cin, 64);
        let d2 = m.conv(d1.out(), 96, [3, 3], 1, [1, 1]);
        Self {
            branch1x1: m.c1(cin, 64),
            branch5x5_2: m.conv(b5.out(), 64, [5, 5], 1, [2, 2]),
            branch5x5_1: b5,
            branch3x3dbl_3: m.conv(d2.out(), 96, [3, 3], 1, [1, 1]),
            branch3x3dbl_2: d2,
            branch3x3dbl_1: d1,
            branch_pool: m.c1(cin, pool_features),
        }
    }

    fn out(&self) -> usize {
        self.branch1x1.out()
            + self.branch5x5_2.out()
            + self.branch3x3dbl_3.out()
            + self.branch_pool.out()
    }

    /// `[batch, c, h, w]` -> the four branches concatenated along channels, at the same
    /// side.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let c = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let d = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// torchvision's `InceptionB` (Mixed_6a): the grid reduction from 35x35 to 17x17, a
/// strided 3x3 branch, a strided double-3x3 branch and a max pool, concatenated.
/// Channel counts below are the published ones, which the width multiplier scales.
#[derive(Module, Debug)]
pub struct InceptionB<B: Backend> {
    /// The stride-2 3x3 convolution (384 channels).
    pub branch3x3: BasicConv<B>,
    /// The double-3x3 branch's 1x1 reduction (64 channels).
    pub branch3x3dbl_1: BasicConv<B>,
    /// The double-3x3 branch's first 3x3 convolution (96 channels).
    pub branch3x3dbl_2: BasicConv<B>,
    /// The double-3x3 branch's stride-2 3x3 convolution (96 channels).
    pub branch3x3dbl_3: BasicConv<B>,
}

impl<B: Backend> InceptionB<B> {
    fn new(m: &Maker<'_, B>, cin: usize) -> Self {
        let d1 = m.c1(cin, 64);
        let d2 = m.conv(d1.out(), 96, [3, 3], 1, [1, 1]);
        Self {
            branch3x3: m.conv(cin, 384, [3, 3], 2, [0, 0]),
            branch3x3dbl_3: m.conv(d2.out(), 96, [3, 3], 2, [0, 0]),
            branch3x3dbl_2: d2,
            branch3x3dbl_1: d1,
        }
    }

    /// `[batch, c, h, w]` -> the two branches and a 3x3 stride-2 max pool concatenated
    /// along channels, at about half the side.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch3x3.forward(x.clone());
        let b = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        Tensor::cat(vec![a, b, max3s2(x)], 1)
    }
}

/// torchvision's `InceptionC` (Mixed_6b to 6e, on the 17x17 grid): 7x7 convolutions
/// factorized into 1x7 and 7x1 pairs. `c7`, the width inside the 7x7 branches, is 128,
/// 160, 160 and 192 in Mixed_6b to 6e; channel counts below are the published ones,
/// which the width multiplier scales.
#[derive(Module, Debug)]
pub struct InceptionC<B: Backend> {
    /// The 1x1 branch (192 channels).
    pub branch1x1: BasicConv<B>,
    /// The 7x7 branch's 1x1 reduction (`c7` channels).
    pub branch7x7_1: BasicConv<B>,
    /// The 7x7 branch's 1x7 convolution (`c7` channels).
    pub branch7x7_2: BasicConv<B>,
    /// The 7x7 branch's 7x1 convolution (192 channels).
    pub branch7x7_3: BasicConv<B>,
    /// The double-7x7 branch's 1x1 reduction (`c7` channels).
    pub branch7x7dbl_1: BasicConv<B>,
    /// The double-7x7 branch's first 7x1 convolution (`c7` channels).
    pub branch7x7dbl_2: BasicConv<B>,
    /// The double-7x7 branch's first 1x7 convolution (`c7` channels).
    pub branch7x7dbl_3: BasicConv<B>,
    /// The double-7x7 branch's second 7x1 convolution (`c7` channels).
    pub branch7x7dbl_4: BasicConv<B>,
    /// The double-7x7 branch's second 1x7 convolution (192 channels).
    pub branch7x7dbl_5: BasicConv<B>,
    /// The 1x1 convolution after a 3x3 average pool (192 channels).
    pub branch_pool: BasicConv<B>,
}

impl<B: Backend> InceptionC<B> {
    fn new(m: &Maker<'_, B>, cin: usize, c7: usize) -> Self {
        let (h, v) = (([1, 7], [0, 3]), ([7, 1], [3, 0]));
        let s1 = m.c1(cin, c7);
        let s2 = m.conv(s1.out(), c7, h.0, 1, h.1);
        let s3 = m.conv(s2.out(), 192, v.0, 1, v.1);
        let d1 = m.c1(cin, c7);
        let d2 = m.conv(d1.out(), c7, v.0, 1, v.1);
        let d3 = m.conv(d2.out(), c7, h.0, 1, h.1);
        let d4 = m.conv(d3.out(), c7, v.0, 1, v.1);
        let d5 = m.conv(d4.out(), 192, h.0, 1, h.1);
        Self {
            branch1x1: m.c1(cin, 192),
            branch7x7_1: s1,
            branch7x7_2: s2,
            branch7x7_3: s3,
            branch7x7dbl_1: d1,
            branch7x7dbl_2: d2,
            branch7x7dbl_3: d3,
            branch7x7dbl_4: d4,
            branch7x7dbl_5: d5,
            branch_pool: m.c1(cin, 192),
        }
    }

    fn out(&self) -> usize {
        self.branch1x1.out()
            + self.branch7x7_3.out()
            + self.branch7x7dbl_5.out()
            + self.branch_pool.out()
    }

    /// `[batch, c, h, w]` -> the four branches concatenated along channels (768 at width
    /// 1), at the same side.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self.branch7x7_3.forward(
            self.branch7x7_2
                .forward(self.branch7x7_1.forward(x.clone())),
        );
        let mut c = self.branch7x7dbl_1.forward(x.clone());
        for conv in [
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ] {
            c = conv.forward(c);
        }
        let d = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// torchvision's `InceptionD` (Mixed_7a): the grid reduction from 17x17 to 8x8, a
/// strided 3x3 branch, a strided 7x7x3 branch and a max pool, concatenated. Channel
/// counts below are the published ones, which the width multiplier scales.
#[derive(Module, Debug)]
pub struct InceptionD<B: Backend> {
    /// The 3x3 branch's 1x1 reduction (192 channels).
    pub branch3x3_1: BasicConv<B>,
    /// The 3x3 branch's stride-2 3x3 convolution (320 channels).
    pub branch3x3_2: BasicConv<B>,
    /// The 7x7x3 branch's 1x1 reduction (192 channels).
    pub branch7x7x3_1: BasicConv<B>,
    /// The 7x7x3 branch's 1x7 convolution (192 channels).
    pub branch7x7x3_2: BasicConv<B>,
    /// The 7x7x3 branch's 7x1 convolution (192 channels).
    pub branch7x7x3_3: BasicConv<B>,
    /// The 7x7x3 branch's stride-2 3x3 convolution (192 channels).
    pub branch7x7x3_4: BasicConv<B>,
}

impl<B: Backend> InceptionD<B> {
    fn new(m: &Maker<'_, B>, cin: usize) -> Self {
        let a1 = m.c1(cin, 192);
        let a2 = m.conv(a1.out(), 320, [3, 3], 2, [0, 0]);
        let b1 = m.c1(cin, 192);
        let b2 = m.conv(b1.out(), 192, [1, 7], 1, [0, 3]);
        let b3 = m.conv(b2.out(), 192, [7, 1], 1, [3, 0]);
        let b4 = m.conv(b3.out(), 192, [3, 3], 2, [0, 0]);
        Self {
            branch3x3_1: a1,
            branch3x3_2: a2,
            branch7x7x3_1: b1,
            branch7x7x3_2: b2,
            branch7x7x3_3: b3,
            branch7x7x3_4: b4,
        }
    }

    /// `[batch, c, h, w]` -> the two branches and a 3x3 stride-2 max pool concatenated
    /// along channels, at about half the side.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let mut b = self.branch7x7x3_1.forward(x.clone());
        for conv in [
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ] {
            b = conv.forward(b);
        }
        Tensor::cat(vec![a, b, max3s2(x)], 1)
    }
}

/// torchvision's `InceptionE` (Mixed_7b and 7c, on the 8x8 grid): branches that end in
/// parallel 1x3 and 3x1 convolutions, whose outputs are concatenated. Channel counts
/// below are the published ones, which the width multiplier scales.
#[derive(Module, Debug)]
pub struct InceptionE<B: Backend> {
    /// The 1x1 branch (320 channels).
    pub branch1x1: BasicConv<B>,
    /// The 3x3 branch's 1x1 reduction (384 channels).
    pub branch3x3_1: BasicConv<B>,
    /// The 3x3 branch's 1x3 convolution (384 channels).
    pub branch3x3_2a: BasicConv<B>,
    /// The 3x3 branch's 3x1 convolution (384 channels), beside the 1x3 one.
    pub branch3x3_2b: BasicConv<B>,
    /// The double-3x3 branch's 1x1 reduction (448 channels).
    pub branch3x3dbl_1: BasicConv<B>,
    /// The double-3x3 branch's 3x3 convolution (384 channels).
    pub branch3x3dbl_2: BasicConv<B>,
    /// The double-3x3 branch's 1x3 convolution (384 channels).
    pub branch3x3dbl_3a: BasicConv<B>,
    /// The double-3x3 branch's 3x1 convolution (384 channels), beside the 1x3 one.
    pub branch3x3dbl_3b: BasicConv<B>,
    /// The 1x1 convolution after a 3x3 average pool (192 channels).
    pub branch_pool: BasicConv<B>,
}

impl<B: Backend> InceptionE<B> {
    fn new(m: &Maker<'_, B>, cin: usize) -> Self {
        let s1 = m.c1(cin, 384);
        let d1 = m.c1(cin, 448);
        let d2 = m.conv(d1.out(), 384, [3, 3], 1, [1, 1]);
        Self {
            branch1x1: m.c1(cin, 320),
            branch3x3_2a: m.conv(s1.out(), 384, [1, 3], 1, [0, 1]),
            branch3x3_2b: m.conv(s1.out(), 384, [3, 1], 1, [1, 0]),
            branch3x3_1: s1,
            branch3x3dbl_3a: m.conv(d2.out(), 384, [1, 3], 1, [0, 1]),
            branch3x3dbl_3b: m.conv(d2.out(), 384, [3, 1], 1, [1, 0]),
            branch3x3dbl_2: d2,
            branch3x3dbl_1: d1,
            branch_pool: m.c1(cin, 192),
        }
    }

    fn out(&self) -> usize {
        self.branch1x1.out()
            + 2 * self.branch3x3_2a.out()
            + 2 * self.branch3x3dbl_3a.out()
            + self.branch_pool.out()
    }

    /// `[batch, c, h, w]` -> the branches concatenated along channels (2048 at width 1), at
    /// the same side.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch1x1.forward(x.clone());
        let s = self.branch3x3_1.forward(x.clone());
        let b = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(s.clone()),
                self.branch3x3_2b.forward(s),
            ],
            1,
        );
        let d = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let c = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(d.clone()),
                self.branch3x3dbl_3b.forward(d),
            ],
            1,
        );
        let p = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![a, b, c, p], 1)
    }
}

/// torchvision's `InceptionAux`, trained on the 17x17 grid.
#[derive(Module, Debug)]
pub struct InceptionAux<B: Backend> {
    /// The 1x1 convolution (128 channels) after a 5x5 stride-3 average pool.
    pub conv0: BasicConv<B>,
    /// The 5x5 convolution (768 channels).
    pub conv1: BasicConv<B>,
    /// The auxiliary classifier: globally pooled features to one logit per class.
    pub fc: Linear<B>,
}

impl<B: Backend> InceptionAux<B> {
    /// `[batch, c, 17, 17]` -> `[batch, num_classes]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = AvgPool2dConfig::new([5, 5])
            .with_strides([3, 3])
            .init()
            .forward(x);
        let x = self.conv1.forward(self.conv0.forward(x));
        self.fc.forward(global_avg_pool(x))
    }
}

/// How to build an [`InceptionV3`].
#[derive(Config, Debug)]
pub struct InceptionV3Config {
    /// Number of classes, one logit each.
    pub num_classes: usize,
    /// Multiplies every convolution's output channels (rounded, at least 1); default 1.0,
    /// the published model.
    #[config(default = 1.0)]
    pub width: f64,
    /// Builds the auxiliary classifier on the 17x17 grid; default false.
    #[config(default = false)]
    pub aux_logits: bool,
    /// Re-scales ImageNet-normalized input as torchvision's pretrained weights expect;
    /// default false.
    #[config(default = false)]
    pub transform_input: bool,
    /// Dropout probability on the pooled features before the linear classifier (the fastai
    /// head has its own); default 0.5.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// `Linear` is the published classifier (`fc`); `Fastai` puts fastai's head on the body.
    #[config(default = "HeadKind::Linear")]
    pub head: HeadKind,
}

/// Inception v3 with torchvision's module names, in Rust's field style.
#[derive(Module, Debug)]
pub struct InceptionV3<B: Backend> {
    /// The stem's first 3x3 stride-2 convolution (32 channels).
    pub conv2d_1a_3x3: BasicConv<B>,
    /// The stem's unpadded 3x3 convolution (32 channels).
    pub conv2d_2a_3x3: BasicConv<B>,
    /// The stem's padded 3x3 convolution (64 channels); a 3x3 stride-2 max pool follows.
    pub conv2d_2b_3x3: BasicConv<B>,
    /// The stem's 1x1 convolution (80 channels).
    pub conv2d_3b_1x1: BasicConv<B>,
    /// The stem's last 3x3 convolution (192 channels); a 3x3 stride-2 max pool follows.
    pub conv2d_4a_3x3: BasicConv<B>,
    /// The first Inception-A block (32 pooling channels).
    pub mixed_5b: InceptionA<B>,
    /// The second Inception-A block (64 pooling channels).
    pub mixed_5c: InceptionA<B>,
    /// The third Inception-A block (64 pooling channels).
    pub mixed_5d: InceptionA<B>,
    /// The reduction from the 35x35 to the 17x17 grid.
    pub mixed_6a: InceptionB<B>,
    /// The first Inception-C block (`c7` = 128).
    pub mixed_6b: InceptionC<B>,
    /// The second Inception-C block (`c7` = 160).
    pub mixed_6c: InceptionC<B>,
    /// The third Inception-C block (`c7` = 160).
    pub mixed_6d: InceptionC<B>,
    /// The fourth Inception-C block (`c7` = 192).
    pub mixed_6e: InceptionC<B>,
    /// The auxiliary classifier on Mixed_6e's output, when the config asks for it.
    pub aux_logits: Option<InceptionAux<B>>,
    /// The reduction from the 17x17 to the 8x8 grid.
    pub mixed_7a: InceptionD<B>,
    /// The first Inception-E block.
    pub mixed_7b: InceptionE<B>,
    /// The second Inception-E block, whose output is the body's features.
    pub mixed_7c: InceptionE<B>,
    /// Dropout before the linear classifier `fc`.
    pub dropout: Dropout,
    /// The published classifier: globally pooled features to one logit per class (absent
    /// with the fastai head).
    pub fc: Option<Linear<B>>,
    /// fastai's head, when the config asks for it (absent with `fc`).
    pub head: Option<FastaiHead<B>>,
    /// Whether the trunk first re-scales ImageNet-normalized input, as torchvision's
    /// `transform_input` does.
    pub transform_input: bool,
}

impl InceptionV3Config {
    /// Builds the model with freshly initialized weights on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> InceptionV3<B> {
        let m = Maker::<B> {
            width: self.width,
            device,
        };
        let c1a = m.conv(3, 32, [3, 3], 2, [0, 0]);
        let c2a = m.conv(c1a.out(), 32, [3, 3], 1, [0, 0]);
        let c2b = m.conv(c2a.out(), 64, [3, 3], 1, [1, 1]);
        let c3b = m.c1(c2b.out(), 80);
        let c4a = m.conv(c3b.out(), 192, [3, 3], 1, [0, 0]);
        let m5b = InceptionA::new(&m, c4a.out(), 32);
        let m5c = InceptionA::new(&m, m5b.out(), 64);
        let m5d = InceptionA::new(&m, m5c.out(), 64);
        let cin6 = m5d.out();
        let m6a = InceptionB::new(&m, cin6);
        let c6 = m6a.branch3x3.out() + m6a.branch3x3dbl_3.out() + cin6;
        let m6b = InceptionC::new(&m, c6, 128);
        let m6c = InceptionC::new(&m, m6b.out(), 160);
        let m6d = InceptionC::new(&m, m6c.out(), 160);
        let m6e = InceptionC::new(&m, m6d.out(), 192);
        let c7 = m6e.out();
        let aux = self.aux_logits.then(|| {
            let conv0 = m.c1(c7, 128);
            let conv1 = m.conv(conv0.out(), 768, [5, 5], 1, [0, 0]);
            let fc = LinearConfig::new(conv1.out(), self.num_classes).init(device);
            InceptionAux { conv0, conv1, fc }
        });
        let m7a = InceptionD::new(&m, c7);
        let c7b = m7a.branch3x3_2.out() + m7a.branch7x7x3_4.out() + c7;
        let m7b = InceptionE::new(&m, c7b);
        let m7c = InceptionE::new(&m, m7b.out());
        let features = m7c.out();
        InceptionV3 {
            conv2d_1a_3x3: c1a,
            conv2d_2a_3x3: c2a,
            conv2d_2b_3x3: c2b,
            conv2d_3b_1x1: c3b,
            conv2d_4a_3x3: c4a,
            mixed_5b: m5b,
            mixed_5c: m5c,
            mixed_5d: m5d,
            mixed_6a: m6a,
            mixed_6b: m6b,
            mixed_6c: m6c,
            mixed_6d: m6d,
            mixed_6e: m6e,
            aux_logits: aux,
            mixed_7a: m7a,
            mixed_7b: m7b,
            mixed_7c: m7c,
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: (self.head == HeadKind::Linear)
                .then(|| LinearConfig::new(features, self.num_classes).init(device)),
            head: (self.head == HeadKind::Fastai)
                .then(|| FastaiHeadConfig::new(features, self.num_classes).init(device)),
            transform_input: self.transform_input,
        }
    }
}

impl<B: Backend> InceptionV3<B> {
    /// The 17x17-grid features (input of the auxiliary head) and the final feature maps:
    /// `[batch, 3, h, w]` -> `[batch, c, h', w']`.
    fn trunk(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let x = if self.transform_input {
            transform_input(x)
        } else {
            x
        };
        let x = self
            .conv2d_2b_3x3
            .forward(self.conv2d_2a_3x3.forward(self.conv2d_1a_3x3.forward(x)));
        let x = max3s2(x);
        let x = max3s2(self.conv2d_4a_3x3.forward(self.conv2d_3b_1x1.forward(x)));
        let x = self
            .mixed_5d
            .forward(self.mixed_5c.forward(self.mixed_5b.forward(x)));
        let x = self.mixed_6a.forward(x);
        let mid = self.mixed_6e.forward(
            self.mixed_6d
                .forward(self.mixed_6c.forward(self.mixed_6b.forward(x))),
        );
        let x = self
            .mixed_7c
            .forward(self.mixed_7b.forward(self.mixed_7a.forward(mid.clone())));
        (mid, x)
    }

    /// Feature maps of the body: `[batch, 3, h, w]` -> `[batch, 2048·width, h', w']`.
    pub fn features(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.trunk(x).1
    }

    /// Class logits: `[batch, 3, h, w]` -> `[batch, num_classes]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_aux(x).0
    }

    /// Logits and, when the model has one, the auxiliary head's logits.
    pub fn forward_aux(&self, x: Tensor<B, 4>) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let (mid, f) = self.trunk(x);
        let aux = self.aux_logits.as_ref().map(|a| a.forward(mid));
        (
            classify(f, self.fc.as_ref(), self.head.as_ref(), Some(&self.dropout)),
            aux,
        )
    }
}

/// torchvision's `_transform_input`: ImageNet-normalized input to `(x - 0.5) / 0.5`.
fn transform_input<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let mean = [0.485, 0.456, 0.406];
    let std = [0.229, 0.224, 0.225];
    let chans: Vec<Tensor<B, 4>> = x
        .chunk(3, 1)
        .into_iter()
        .enumerate()
        .map(|(c, t)| t * (std[c] / 0.5) + (mean[c] - 0.5) / 0.5)
        .collect();
    Tensor::cat(chans, 1)
}
