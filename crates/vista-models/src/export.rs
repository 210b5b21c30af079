//! Writing a model for other tools: a safetensors file in PyTorch's layout and names,
//! the inverse of [`load_checkpoint`](crate::load_checkpoint).
//!
//! The tensors get the names of the architecture's PyTorch original: torchvision's for
//! the ResNets (`layer1.0.downsample.0.weight`) and Inception v3 (`Conv2d_1a_3x3`,
//! `Mixed_5b`, `AuxLogits`), EfficientNet-PyTorch's for EfficientNet-Lite0
//! (`_conv_stem`, `_blocks.0._bn1`). Linear weights are stored `[out, in]` and batch
//! norms' `gamma`/`beta` as `weight`/`bias`, so `model.load_state_dict(...,
//! strict=True)` takes the file, except for the counters `num_batches_tracked`, which
//! burn does not keep (PyTorch's `strict=False` skips them; they only matter for a batch
//! norm with `momentum=None`). fastai's head has no torchvision counterpart and keeps
//! vista's names (`head.*`).

use std::path::Path;

use burn::tensor::backend::Backend;
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};

use crate::error::{Error, Result};
use crate::registry::AnyModel;

/// vista's names to torchvision's, applied in order to every key.
const TORCHVISION_NAMES: [(&str, &str); 5] = [
    (r"\.downsample\.conv\.", ".downsample.0."),
    (r"\.downsample\.bn\.", ".downsample.1."),
    (r"^conv2d_", "Conv2d_"),
    (r"^mixed_", "Mixed_"),
    (r"^aux_logits\.", "AuxLogits."),
];

/// EfficientNet-PyTorch's names: every module name starts with `_` (`_blocks.0._bn1`);
/// list indices and the parameter's own name do not.
const EFFICIENTNET_NAMES: [(&str, &str); 3] = [
    // The first segment, unless it is the parameter itself.
    (r"^([a-z][a-z0-9_]*)\.", "_${1}."),
    // Later module segments: a name followed by another segment. Matches do not
    // overlap, so a second pass takes the names the first skipped (`.a.b.`).
    (r"\.([a-z][a-z0-9_]*)\.", "._${1}."),
    (r"\.([a-z][a-z0-9_]*)\.", "._${1}."),
];

/// The safetensors bytes of `model` in its PyTorch original's layout and names (see the
/// module's documentation), with `metadata` stored in the file's header.
pub fn to_safetensors<B: Backend>(
    model: &AnyModel<B>,
    metadata: &[(&str, &str)],
) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    for (key, value) in metadata {
        store = store.metadata(*key, *value);
    }
    let names: &[(&str, &str)] = match model {
        AnyModel::EfficientNet(_) => &EFFICIENTNET_NAMES,
        _ => &TORCHVISION_NAMES,
    };
    for &(from, to) in names {
        store = store.with_key_remapping(from, to);
    }
    let saved = match model {
        AnyModel::ResNet(m) => m.save_into(&mut store),
        AnyModel::Inception(m) => m.save_into(&mut store),
        AnyModel::EfficientNet(m) => m.save_into(&mut store),
    };
    let failed = |e: burn_store::SafetensorsStoreError| Error::Export(e.to_string());
    saved.map_err(failed)?;
    store.get_bytes().map_err(failed)
}

/// Writes [`to_safetensors`]'s bytes to `path`, atomically and durably.
pub fn export_safetensors<B: Backend>(
    model: &AnyModel<B>,
    path: &Path,
    metadata: &[(&str, &str)],
) -> Result<()> {
    let bytes = to_safetensors(model, metadata)?;
    vista_format::write_atomic(path, &bytes).map_err(|e| Error::Export(e.to_string()))
}
