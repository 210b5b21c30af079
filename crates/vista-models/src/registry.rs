//! The architecture registry: [`Arch`] names every architecture (one table of names for
//! every command and file), [`ModelConfig`] builds one as [`AnyModel`], and
//! [`Classifier`] is what training and inference need of a model. Each architecture
//! also says which input normalization its pretrained weights expect.

use std::path::Path;

use burn::module::{Module, ParamId};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use vista_format::Normalize;

use crate::efficientnet::{EfficientNetLite, EfficientNetLiteConfig};
use crate::error::{Error, Result};
use crate::groups::LayerGroups;
use crate::import::{ImportOptions, ImportReport, load_checkpoint};
use crate::inception::{InceptionV3, InceptionV3Config};
use crate::resnet::{HeadKind, ResNet, ResNetConfig, ResNetDepth};

/// An image classifier the Learner can fit: logits from images, and layer groups for
/// freezing and discriminative learning rates.
pub trait Classifier<B: Backend>: LayerGroups<B> + Send + Sync {
    /// `[batch, 3, height, width]` -> `[batch, num_classes]` logits.
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2>;
}

/// The architectures vista builds, by the names every command and file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// ResNet-18 (`resnet18`).
    #[cfg_attr(feature = "clap", value(name = "resnet18"))]
    Resnet18,
    /// ResNet-34 (`resnet34`).
    #[cfg_attr(feature = "clap", value(name = "resnet34"))]
    Resnet34,
    /// ResNet-50 (`resnet50`).
    #[cfg_attr(feature = "clap", value(name = "resnet50"))]
    Resnet50,
    /// Inception v3 (`inception_v3`).
    #[cfg_attr(feature = "clap", value(name = "inception_v3", alias = "inception-v3"))]
    InceptionV3,
    /// EfficientNet-Lite0 (`efficientnet_lite0`).
    #[cfg_attr(
        feature = "clap",
        value(name = "efficientnet_lite0", alias = "efficientnet-lite0")
    )]
    EfficientnetLite0,
}

impl Arch {
    /// Every architecture in the registry.
    pub const ALL: [Arch; 5] = [
        Arch::Resnet18,
        Arch::Resnet34,
        Arch::Resnet50,
        Arch::InceptionV3,
        Arch::EfficientnetLite0,
    ];

    /// The architecture's name in commands and files (`resnet18`, `inception_v3`, ...),
    /// which [`Arch::parse`] reads back.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
            Arch::InceptionV3 => "inception_v3",
            Arch::EfficientnetLite0 => "efficientnet_lite0",
        }
    }

    /// The architecture called `name`, spelled with `_` or `-` (`efficientnet_lite0`
    /// and `efficientnet-lite0` are the same model).
    pub fn parse(name: &str) -> Result<Arch> {
        let wanted = name.replace('-', "_");
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == wanted)
            .ok_or_else(|| Error::UnknownArch(name.to_string()))
    }

    /// The input normalization the architecture's published pretrained weights expect,
    /// applied to pixels in [0, 1] as `(x - mean) / std`: ImageNet's statistics for
    /// torchvision's models; `(255·x − 127) / 128` for EfficientNet-Lite0, whose
    /// TensorFlow Lite weights were trained on inputs in [−1, 1].
    pub fn pretrained_normalize(self) -> Normalize {
        match self {
            Arch::EfficientnetLite0 => Normalize {
                mean: [127.0 / 255.0; 3],
                std: [128.0 / 255.0; 3],
            },
            _ => Normalize::IMAGENET,
        }
    }

    /// True for the ResNets, the architectures with a small-image stem to choose.
    pub fn has_small_stem(self) -> bool {
        matches!(self, Arch::Resnet18 | Arch::Resnet34 | Arch::Resnet50)
    }

    /// The smallest input side the architecture accepts.
    pub fn min_size(self) -> u32 {
        match self {
            Arch::InceptionV3 => 75,
            _ => 8,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(name: &str) -> Result<Arch> {
        Arch::parse(name)
    }
}

/// A model by name and shape; saved in the run's config so `predict` rebuilds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// The architecture; default ResNet-18.
    pub arch: Arch,
    /// Number of classes, one logit each; default 10.
    pub num_classes: usize,
    /// Channel multiplier (ResNets and Inception; 1.0 = the published model).
    pub width: f64,
    /// The ResNets' 3x3 stride-1 stem without max-pool, for 28–64 px images.
    pub small_stem: bool,
    /// fastai's head (pooling, batch norm, dropout, two linear layers) instead of one
    /// linear layer.
    pub fastai_head: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet18,
            num_classes: 10,
            width: 1.0,
            small_stem: false,
            fastai_head: false,
        }
    }
}

/// burn's backends draw random numbers from one generator per process; two threads
/// that seed it and initialize a model at the same time would take each other's draws.
static SEEDED_INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `init` with the backend's generator seeded first, holding a process-wide lock,
/// on a thread with room for deep frames (records of large models make them at low
/// optimization levels). `init` must materialize the parameters it makes: burn
/// initializes them lazily, and a later draw would not be seeded.
pub fn init_seeded_with<B: Backend, T: Send>(
    seed: u64,
    device: &B::Device,
    init: impl FnOnce() -> T + Send,
) -> T {
    let _guard = SEEDED_INIT.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, || {
                B::seed(device, seed);
                init()
            })
            .expect("a thread for model init")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl ModelConfig {
    /// Whether the small stem suits inputs of at most `largest` pixels: a 7x7 stride-2
    /// convolution and a max-pool would leave a 64 px image 16 px wide before the first
    /// block (fastai's ResNets keep the stem; CIFAR-style ResNets drop it).
    pub fn small_stem_suits(largest: u32) -> bool {
        largest <= 64
    }

    /// [`ModelConfig::init`] with the backend's generator seeded first, holding a
    /// process-wide lock, so the same seed gives the same weights whatever else runs.
    pub fn init_seeded<B: Backend>(&self, seed: u64, device: &B::Device) -> Result<AnyModel<B>> {
        init_seeded_with::<B, _>(seed, device, || {
            let model = self.init::<B>(device)?;
            // burn initializes parameters lazily (and each clone on its own):
            // materialize them all while the lock is held.
            let record = model.clone().into_record();
            Ok(model.load_record(record))
        })
    }

    /// Builds the model with freshly initialized weights on `device`; fails when a
    /// ResNet's width or class count is out of range.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<AnyModel<B>> {
        let head = if self.fastai_head {
            HeadKind::Fastai
        } else {
            HeadKind::Linear
        };
        let resnet = |depth| {
            ResNetConfig::new(depth, self.num_classes)
                .with_width(self.width)
                .with_small_stem(self.small_stem)
                .with_head(head)
                .init(device)
                .map(AnyModel::ResNet)
        };
        Ok(match self.arch {
            Arch::Resnet18 => resnet(ResNetDepth::R18)?,
            Arch::Resnet34 => resnet(ResNetDepth::R34)?,
            Arch::Resnet50 => resnet(ResNetDepth::R50)?,
            Arch::InceptionV3 => AnyModel::Inception(
                InceptionV3Config::new(self.num_classes)
                    .with_width(self.width)
                    .with_head(head)
                    .init(device),
            ),
            Arch::EfficientnetLite0 => AnyModel::EfficientNet(
                EfficientNetLiteConfig::new()
                    .with_num_classes(self.num_classes)
                    .with_head(head)
                    .init(device),
            ),
        })
    }
}

/// One of vista-models' classifiers.
///
/// Inception v3 is ~60 KB inline; burn's `Module` has no implementation for `Box`, so
/// the variant cannot be boxed, and the training thread gets a large stack instead.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyModel<B: Backend> {
    /// A ResNet-18, -34 or -50.
    ResNet(ResNet<B>),
    /// An Inception v3.
    Inception(InceptionV3<B>),
    /// An EfficientNet-Lite0.
    EfficientNet(EfficientNetLite<B>),
}

impl<B: Backend> AnyModel<B> {
    /// Loads pretrained weights (PyTorch `.pth` or safetensors) into the body; the head is
    /// kept new when its class count differs from the checkpoint's.
    pub fn load_pretrained(self, path: &Path) -> Result<(Self, ImportReport)> {
        let opts = ImportOptions {
            allow_partial: false,
            new_head: true,
        };
        self.load_weights(path, &opts)
    }

    /// Loads a checkpoint into the model as `opts` say ([`load_checkpoint`]).
    pub fn load_weights(self, path: &Path, opts: &ImportOptions) -> Result<(Self, ImportReport)> {
        Ok(match self {
            AnyModel::ResNet(m) => {
                let (m, r) = load_checkpoint(m, path, opts)?;
                (AnyModel::ResNet(m), r)
            }
            AnyModel::Inception(m) => {
                let (m, r) = load_checkpoint(m, path, opts)?;
                (AnyModel::Inception(m), r)
            }
            AnyModel::EfficientNet(m) => {
                let (m, r) = load_checkpoint(m, path, opts)?;
                (AnyModel::EfficientNet(m), r)
            }
        })
    }
}

impl<B: Backend> LayerGroups<B> for AnyModel<B> {
    fn layer_groups(&self) -> Vec<Vec<ParamId>> {
        match self {
            AnyModel::ResNet(m) => m.layer_groups(),
            AnyModel::Inception(m) => m.layer_groups(),
            AnyModel::EfficientNet(m) => m.layer_groups(),
        }
    }

    fn freeze_body(self) -> Self {
        match self {
            AnyModel::ResNet(m) => AnyModel::ResNet(m.freeze_body()),
            AnyModel::Inception(m) => AnyModel::Inception(m.freeze_body()),
            AnyModel::EfficientNet(m) => AnyModel::EfficientNet(m.freeze_body()),
        }
    }
}

impl<B: Backend> Classifier<B> for AnyModel<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            AnyModel::ResNet(m) => m.forward(images),
            AnyModel::Inception(m) => m.forward(images),
            AnyModel::EfficientNet(m) => m.forward(images),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_parses_by_its_name_with_either_separator() {
        for arch in Arch::ALL {
            assert_eq!(Arch::parse(arch.name()).unwrap(), arch);
            assert_eq!(Arch::parse(&arch.name().replace('_', "-")).unwrap(), arch);
        }
        let err = Arch::parse("resnet101").unwrap_err().to_string();
        assert!(
            err.contains("resnet101") && err.contains("inception_v3"),
            "{err}"
        );
    }
}
