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
    pub conv: Conv2d<B>,
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
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .init()
        .forward(x)
}

#[derive(Module, Debug)]
pub struct InceptionA<B: Backend> {
    pub branch1x1: BasicConv<B>,
    pub branch5x5_1: BasicConv<B>,
    pub branch5x5_2: BasicConv<B>,
    pub branch3x3dbl_1: BasicConv<B>,
    pub branch3x3dbl_2: BasicConv<B>,
    pub branch3x3dbl_3: BasicConv<B>,
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

#[derive(Module, Debug)]
pub struct InceptionB<B: Backend> {
    pub branch3x3: BasicConv<B>,
    pub branch3x3dbl_1: BasicConv<B>,
    pub branch3x3dbl_2: BasicConv<B>,
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

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let a = self.branch3x3.forward(x.clone());
        let b = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        Tensor::cat(vec![a, b, max3s2(x)], 1)
    }
}

#[derive(Module, Debug)]
pub struct InceptionC<B: Backend> {
    pub branch1x1: BasicConv<B>,
    pub branch7x7_1: BasicConv<B>,
    pub branch7x7_2: BasicConv<B>,
    pub branch7x7_3: BasicConv<B>,
    pub branch7x7dbl_1: BasicConv<B>,
    pub branch7x7dbl_2: BasicConv<B>,
    pub branch7x7dbl_3: BasicConv<B>,
    pub branch7x7dbl_4: BasicConv<B>,
    pub branch7x7dbl_5: BasicConv<B>,
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

#[derive(Module, Debug)]
pub struct InceptionD<B: Backend> {
    pub branch3x3_1: BasicConv<B>,
    pub branch3x3_2: BasicConv<B>,
    pub branch7x7x3_1: BasicConv<B>,
    pub branch7x7x3_2: BasicConv<B>,
    pub branch7x7x3_3: BasicConv<B>,
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

#[derive(Module, Debug)]
pub struct InceptionE<B: Backend> {
    pub branch1x1: BasicConv<B>,
    pub branch3x3_1: BasicConv<B>,
    pub branch3x3_2a: BasicConv<B>,
    pub branch3x3_2b: BasicConv<B>,
    pub branch3x3dbl_1: BasicConv<B>,
    pub branch3x3dbl_2: BasicConv<B>,
    pub branch3x3dbl_3a: BasicConv<B>,
    pub branch3x3dbl_3b: BasicConv<B>,
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
    pub conv0: BasicConv<B>,
    pub conv1: BasicConv<B>,
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

#[derive(Config, Debug)]
pub struct InceptionV3Config {
    pub num_classes: usize,
    #[config(default = 1.0)]
    pub width: f64,
    #[config(default = false)]
    pub aux_logits: bool,
    #[config(default = false)]
    pub transform_input: bool,
    #[config(default = 0.5)]
    pub dropout: f64,
    /// `Linear` is the published classifier (`fc`); `Fastai` puts fastai's head on the body.
    #[config(default = "HeadKind::Linear")]
    pub head: HeadKind,
}

#[derive(Module, Debug)]
pub struct InceptionV3<B: Backend> {
    pub conv2d_1a_3x3: BasicConv<B>,
    pub conv2d_2a_3x3: BasicConv<B>,
    pub conv2d_2b_3x3: BasicConv<B>,
    pub conv2d_3b_1x1: BasicConv<B>,
    pub conv2d_4a_3x3: BasicConv<B>,
    pub mixed_5b: InceptionA<B>,
    pub mixed_5c: InceptionA<B>,
    pub mixed_5d: InceptionA<B>,
    pub mixed_6a: InceptionB<B>,
    pub mixed_6b: InceptionC<B>,
    pub mixed_6c: InceptionC<B>,
    pub mixed_6d: InceptionC<B>,
    pub mixed_6e: InceptionC<B>,
    pub aux_logits: Option<InceptionAux<B>>,
    pub mixed_7a: InceptionD<B>,
    pub mixed_7b: InceptionE<B>,
    pub mixed_7c: InceptionE<B>,
    pub dropout: Dropout,
    pub fc: Option<Linear<B>>,
    pub head: Option<FastaiHead<B>>,
    pub transform_input: bool,
}

impl InceptionV3Config {
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
