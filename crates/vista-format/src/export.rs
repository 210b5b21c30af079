//! `<model>.json`, written beside an exported model: what a program outside vista needs
//! to use the weights (architecture, classes in output order, input normalization and
//! size).

use serde::{Deserialize, Serialize};

use crate::normalize::Normalize;

/// The description of an exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// The architecture, as vista names it (`resnet18`, `efficientnet_lite0`, ...).
    pub architecture: String,
    /// The naming scheme of the tensors: `torchvision` or `efficientnet-pytorch`.
    pub names: String,
    /// How to build the model in PyTorch, for `load_state_dict`.
    pub pytorch: String,
    /// Channel multiplier (1 = the published model).
    pub width: f64,
    /// A ResNet's small-image stem (3x3, no max-pool), which torchvision lacks.
    pub small_stem: bool,
    /// fastai's head instead of one linear layer (its tensors keep vista's `head.*` names).
    pub fastai_head: bool,
    /// Class names, in the order of the model's outputs.
    pub classes: Vec<String>,
    /// Normalization of RGB pixels in [0, 1], `(x - mean) / std`, before the model.
    pub normalize: Normalize,
    /// The square input side the model was trained at last, in pixels.
    pub input_size: u32,
}
