//! vista-models: classifiers and pretrained weights.
//!
//! - [`ResNetConfig`] builds ResNet-18/34/50 with torchvision's parameter names, an
//!   optional small-image stem and a width multiplier; [`FastaiHeadConfig`] is fastai's
//!   fine-tuning head.
//! - [`load_checkpoint`] loads PyTorch (`.pth`, legacy and zip) and safetensors files,
//!   failing with every mismatched key unless told otherwise; [`inspect`] lists a
//!   checkpoint and names the architecture it fits; [`TorchFile`] is their reader of
//!   `.pth` files, which treats every file as hostile and parses from memory too
//!   ([`TorchFile::from_bytes`]), as a fuzzer drives it.
//! - [`Arch`] is the one registry of architecture names; [`ModelConfig`] builds any of
//!   them as an [`AnyModel`], a [`Classifier`]; [`infer_probs`] and [`on_shards`] run a
//!   model over shards of a batch, one thread per device.
//! - `ops/` holds the workarounds for burn 0.21 that the models call instead of burn's
//!   own layers (a convolution and a batch norm fast on the flex CPU backend, behind the
//!   default feature `flex-kernels`, and reproducible dropout), each with the upstream
//!   change that would retire it.
//!
//! # Example
//!
//! A tiny ResNet-18 for three classes on 28 px images, its logits for a batch of two,
//! and an architecture name read back:
//!
//! ```
//! use burn::backend::Flex;
//! use burn::tensor::Tensor;
//! use vista_models::{Arch, Classifier, ModelConfig};
//!
//! let device = Default::default();
//! let model = ModelConfig {
//!     arch: Arch::Resnet18,
//!     num_classes: 3,
//!     width: 0.125,
//!     small_stem: true,
//!     ..ModelConfig::default()
//! }
//! .init_seeded::<Flex>(42, &device)?;
//! let images = Tensor::<Flex, 4>::zeros([2, 3, 28, 28], &device);
//! assert_eq!(model.logits(images).dims(), [2, 3]);
//!
//! let arch: Arch = "resnet18".parse()?;
//! assert_eq!(arch, Arch::Resnet18);
//! assert_eq!(arch.to_string(), "resnet18");
//! # Ok::<(), vista_models::Error>(())
//! ```

#![warn(missing_docs)]

mod efficientnet;
mod error;
mod export;
mod gan;
mod groups;
mod head;
mod import;
mod inception;
mod ops;
mod registry;
mod resnet;
mod shards;

pub use efficientnet::{EfficientNetLite, EfficientNetLiteConfig, MbConv, SameConv};
pub use error::{Error, KeyMismatch, Result, ShapeMismatch};
pub use export::{export_safetensors, to_safetensors};
pub use gan::{Critic, CriticConfig, Generator, GeneratorConfig, UpBlock, clip_weights};
pub use groups::{LayerGroups, set_trainable};
pub use head::{FastaiHead, FastaiHeadConfig};
pub use import::{
    Fixed, Guess, ImportOptions, ImportReport, Inspection, TensorInfo, inspect, load_checkpoint,
};
pub use inception::{
    BasicConv, InceptionA, InceptionAux, InceptionB, InceptionC, InceptionD, InceptionE,
    InceptionV3, InceptionV3Config,
};
pub use ops::{SgdStep, Unfused, batch_norm, conv2d, dropout, fused_sgd, seed_dropout};
pub use registry::{AnyModel, Arch, Classifier, ModelConfig, init_seeded_with};
pub use resnet::{Block, Downsample, HeadKind, ResNet, ResNetConfig, ResNetDepth};
pub use shards::{infer_probs, on_shards, shard_ranges};
// The checkpoint reader lives with the other file formats, where the fuzzer builds it
// without burn.
pub use vista_format::{Dtype, ReadError, TensorRef, TorchFile};
