//! Networks for a Wasserstein GAN (Arjovsky et al. 2017), shaped like DCGAN (Radford et
//! al. 2016) as fastai's `basic_generator` / `basic_critic` build them for
//! `GANLearner.wgan`: the generator turns noise into a 32 or 64 px image with transposed
//! convolutions, BatchNorm and ReLU, ending in tanh; the critic mirrors it with strided
//! convolutions and LeakyReLU(0.2) and, as the WGAN paper asks, no BatchNorm, so each
//! image's score depends on that image alone.
//!
//! Optional class conditioning: the generator appends a learned class embedding to the
//! noise; the critic appends one constant plane per class (one-hot) to the image.

use burn::config::Config;
use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Initializer, PaddingConfig2d,
};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::error::{Error, Result};
use crate::ops::batch_norm;
use crate::ops::conv2d;

/// DCGAN's initialization: weights ~ N(0, 0.02).
fn dcgan_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// Number of 2x steps between 4 px and `size`, or an error for unsupported sizes.
fn steps(size: usize) -> Result<usize> {
    match size {
        32 => Ok(3),
        64 => Ok(4),
        other => Err(Error::Config(format!(
            "GAN image size must be 32 or 64, not {other}"
        ))),
    }
}

/// How to build a DCGAN-style [`Generator`].
#[derive(Config, Debug)]
pub struct GeneratorConfig {
    /// Output side: 32 or 64.
    pub size: usize,
    /// Channels of the generated images; default 3 (RGB).
    #[config(default = 3)]
    pub channels: usize,
    /// Length of the noise vector each image starts from; default 100.
    #[config(default = 100)]
    pub noise: usize,
    /// Feature maps of the last hidden layer (doubling towards the noise).
    #[config(default = 64)]
    pub features: usize,
    /// Class-conditional when set.
    #[config(default = "None")]
    pub num_classes: Option<usize>,
    /// Width of the class embedding appended to the noise when class-conditional; default
    /// 32.
    #[config(default = 32)]
    pub embedding: usize,
}

/// One transposed convolution, BatchNorm and ReLU.
#[derive(Module, Debug)]
pub struct UpBlock<B: Backend> {
    /// The 4x4 transposed convolution: the 1x1 noise to a 4x4 map in the first block, twice
    /// the side in the others.
    pub conv: ConvTranspose2d<B>,
    /// BatchNorm after the transposed convolution; ReLU follows.
    pub bn: BatchNorm<B>,
}

/// The WGAN generator: noise (and, when conditional, a class) to an image in [-1, 1].
#[derive(Module, Debug)]
pub struct Generator<B: Backend> {
    /// The learned class embedding (class-conditional generators only).
    pub embed: Option<Embedding<B>>,
    /// The upsampling blocks: the first turns the noise into a 4x4 map, each further one
    /// doubles the side and halves the feature maps, ending at half the image's side.
    pub blocks: Vec<UpBlock<B>>,
    /// The last 4x4 stride-2 transposed convolution, to the image's channels at full size;
    /// tanh follows.
    pub out: ConvTranspose2d<B>,
}

impl GeneratorConfig {
    /// Builds the generator on `device`; fails unless `size` is 32 or 64.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Generator<B>> {
        let n = steps(self.size)?;
        let tconv = |cin: usize, cout: usize, stride: usize, pad: usize| {
            ConvTranspose2dConfig::new([cin, cout], [4, 4])
                .with_stride([stride, stride])
                .with_padding([pad, pad])
                .with_bias(false)
                .with_initializer(dcgan_init())
                .init(device)
        };
        let extra = self.num_classes.map_or(0, |_| self.embedding);
        let mut feats = self.features << (n - 1);
        let mut blocks = vec![UpBlock {
            conv: tconv(self.noise + extra, feats, 1, 0),
            bn: BatchNormConfig::new(feats).init(device),
        }];
        for _ in 1..n {
            blocks.push(UpBlock {
                conv: tconv(feats, feats / 2, 2, 1),
                bn: BatchNormConfig::new(feats / 2).init(device),
            });
            feats /= 2;
        }
        Ok(Generator {
            embed: self
                .num_classes
                .map(|c| EmbeddingConfig::new(c, self.embedding).init(device)),
            blocks,
            out: tconv(feats, self.channels, 2, 1),
        })
    }
}

impl<B: Backend> Generator<B> {
    /// `[batch, noise]` (and `[batch]` class ids when conditional) ->
    /// `[batch, channels, size, size]` images in [-1, 1].
    pub fn forward(&self, noise: Tensor<B, 2>, labels: Option<Tensor<B, 1, Int>>) -> Tensor<B, 4> {
        let [b, _] = noise.dims();
        let z = match (&self.embed, labels) {
            (Some(embed), Some(labels)) => {
                let e = embed
                    .forward(labels.reshape([b, 1]))
                    .reshape([b, embed.weight.dims()[1]]);
                Tensor::cat(vec![noise, e], 1)
            }
            (Some(_), None) => panic!("a class-conditional generator needs labels"),
            (None, _) => noise,
        };
        let width = z.dims()[1];
        let mut x = z.reshape([b, width, 1, 1]);
        for block in &self.blocks {
            x = relu(batch_norm(&block.bn, block.conv.forward(x)));
        }
        self.out.forward(x).tanh()
    }
}

/// How to build a DCGAN-style [`Critic`].
#[derive(Config, Debug)]
pub struct CriticConfig {
    /// Input side: 32 or 64.
    pub size: usize,
    /// Channels of the scored images; default 3 (RGB).
    #[config(default = 3)]
    pub channels: usize,
    /// Feature maps of the first convolution, doubling with each halving of the side;
    /// default 64.
    #[config(default = 64)]
    pub features: usize,
    /// Class-conditional when set: one one-hot input plane per class.
    #[config(default = "None")]
    pub num_classes: Option<usize>,
}

/// The WGAN critic: an image (and, when conditional, its class) to one unbounded score.
#[derive(Module, Debug)]
pub struct Critic<B: Backend> {
    /// The 4x4 stride-2 convolutions, each followed by LeakyReLU(0.2), that halve the side
    /// down to 4x4 while doubling the feature maps.
    pub convs: Vec<Conv2d<B>>,
    /// The final 4x4 convolution without padding: the 4x4 map to one score.
    pub out: Conv2d<B>,
    /// Number of classes whose one-hot planes are appended to the input; 0 when
    /// unconditional.
    pub num_classes: usize,
}

impl CriticConfig {
    /// Builds the critic on `device`; fails unless `size` is 32 or 64.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Critic<B>> {
        let n = steps(self.size)?;
        let conv = |cin: usize, cout: usize, stride: usize, pad: usize| {
            Conv2dConfig::new([cin, cout], [4, 4])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_initializer(dcgan_init())
                .init(device)
        };
        let classes = self.num_classes.unwrap_or(0);
        let mut convs = vec![conv(self.channels + classes, self.features, 2, 1)];
        let mut feats = self.features;
        for _ in 1..n {
            convs.push(conv(feats, feats * 2, 2, 1));
            feats *= 2;
        }
        Ok(Critic {
            convs,
            out: conv(feats, 1, 1, 0),
            num_classes: classes,
        })
    }
}

impl<B: Backend> Critic<B> {
    /// `[batch, channels, size, size]` images (and class ids when conditional) ->
    /// `[batch]` scores; higher means "more like the real data".
    pub fn forward(&self, images: Tensor<B, 4>, labels: Option<Tensor<B, 1, Int>>) -> Tensor<B, 1> {
        let [b, _, h, w] = images.dims();
        let mut x = match labels {
            Some(labels) if self.num_classes > 0 => {
                let planes = labels.one_hot::<2>(self.num_classes).float().reshape([
                    b,
                    self.num_classes,
                    1,
                    1,
                ]);
                Tensor::cat(vec![images, planes.expand([b, self.num_classes, h, w])], 1)
            }
            _ => images,
        };
        for conv in &self.convs {
            x = leaky_relu(conv2d(conv, x), 0.2);
        }
        self.out.forward(x).reshape([b])
    }
}

/// Clamps every float parameter into `[-c, c]`: the WGAN paper's weight clipping
/// (c = 0.01), applied to the critic after each of its steps.
pub fn clip_weights<B: Backend, M: Module<B>>(module: M, c: f32) -> M {
    module.map(&mut Clip(c))
}

#[derive(Debug)]
struct Clip(f32);

impl<B: Backend> ModuleMapper<B> for Clip {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let c = self.0;
        // Detached, so each clipped weight is a leaf of the next step's graph rather
        // than the output of a clamp that backward would walk through.
        param.map(|t| {
            let grad = t.is_require_grad();
            let t = t.clamp(-c, c).detach();
            if grad { t.require_grad() } else { t }
        })
    }
}
