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

mod conv;
mod dropout;
mod efficientnet;
mod error;
mod gan;
mod groups;
mod head;
mod import;
mod inception;
mod norm;
mod registry;
mod resnet;
mod shards;

pub use conv::conv2d;
pub use dropout::{dropout, seed_dropout};
pub use efficientnet::{EfficientNetLite, EfficientNetLiteConfig, MbConv, SameConv};
pub use error::{Error, KeyMismatch, Result, ShapeMismatch};
pub use gan::{Critic, CriticConfig, Generator, GeneratorConfig, UpBlock, clip_weights};
pub use groups::{LayerGroups, set_trainable};
pub use head::{FastaiHead, FastaiHeadConfig};
pub use import::{ImportOptions, ImportReport, Inspection, TensorInfo, inspect, load_checkpoint};
pub use inception::{
    BasicConv, InceptionA, InceptionAux, InceptionB, InceptionC, InceptionD, InceptionE,
    InceptionV3, InceptionV3Config,
};
pub use norm::batch_norm;
pub use registry::{AnyModel, Arch, Classifier, ModelConfig, init_seeded_with};
pub use resnet::{Block, Downsample, HeadKind, ResNet, ResNetConfig, ResNetDepth};
pub use shards::{infer_probs, on_shards, shard_ranges};
// The checkpoint reader lives with the other file formats, where the fuzzer builds it
// without burn.
pub use vista_format::{Dtype, ReadError, TensorRef, TorchFile};
