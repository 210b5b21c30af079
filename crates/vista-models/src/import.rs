//! Loading PyTorch checkpoints (the article's "utility function" that put Places365
//! weights into a fastai learner): `.pth` through vista's own stride-aware reader
//! (`torch_file.rs`), safetensors through burn-store.
//!
//! Reads `.pth` / `.pth.tar` / `.pt` in PyTorch's legacy pickle format (PyTorch 0.1–1.5,
//! as Places365's `resnet50_places365.pth.tar`), the zip format (1.6+), and
//! `.safetensors`. Keys are normalized before matching: a checkpoint dict's `state_dict`
//! level and DataParallel's `module.` prefix are stripped, and torchvision's
//! `downsample.0` / `.1` become vista's `downsample.conv` / `.bn`. BatchNorm's
//! `num_batches_tracked` counters are ignored (burn does not keep them).
//!
//! A checkpoint that does not fit is an error listing missing, unexpected and mis-shaped
//! keys; the model is only returned when everything loaded, unless the caller allows a
//! partial load or a new head (a different class count).

use std::path::{Path, PathBuf};

use burn::module::ParamId;
use burn::tensor::TensorData;
use burn::tensor::backend::Backend;
use burn_store::{
    ApplyError, ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore, TensorSnapshot,
};

use vista_format::TorchFile;

use crate::error::{Error, KeyMismatch, Result, ShapeMismatch};
use crate::registry::{Arch, ModelConfig};

/// How strict a load is.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Load whatever fits; the report lists the rest, which keeps its initial values.
    pub allow_partial: bool,
    /// Keep the model's own classifier (`fc.*`, `head.*`) when the checkpoint's has another
    /// shape, as when fine-tuning on a different number of classes.
    pub new_head: bool,
}

/// What a successful load did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Number of tensors loaded.
    pub loaded: usize,
    /// True when the classifier kept its initialization (see [`ImportOptions::new_head`]).
    pub head_reinitialized: bool,
    /// What did not load (empty unless `allow_partial` or `new_head` let it pass).
    pub not_loaded: KeyMismatch,
}

/// Key renamings from PyTorch's conventions to vista's module paths.
const REMAPS: [(&str, &str); 9] = [
    (r"^state_dict\.", ""),
    (r"^module\.", ""),
    // EfficientNet-PyTorch's `_conv_stem`, `_blocks.0._bn1`, ...
    (r"^_", ""),
    (r"\._", "."),
    // torchvision's Inception v3 module names, in Rust's field style.
    (r"^Conv2d_", "conv2d_"),
    (r"^Mixed_", "mixed_"),
    (r"^AuxLogits\.", "aux_logits."),
    (r"\.downsample\.0\.", ".downsample.conv."),
    (r"\.downsample\.1\.", ".downsample.bn."),
];

fn is_head(key: &str) -> bool {
    key.starts_with("fc.") || key.starts_with("head.")
}

fn is_ignored(key: &str) -> bool {
    key.ends_with("num_batches_tracked")
}

/// burn-store applies PyTorch's BatchNorm `weight` / `bias` to burn's `gamma` / `beta`
/// but still lists the PyTorch names as unused; they are not.
fn applied_under_burn_name(key: &str, applied: &[String]) -> bool {
    let renamed = if let Some(p) = key.strip_suffix(".weight") {
        format!("{p}.gamma")
    } else if let Some(p) = key.strip_suffix(".bias") {
        format!("{p}.beta")
    } else {
        return false;
    };
    applied.contains(&renamed)
}

fn read_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Read {
        path: path.into(),
        source: Box::new(e),
    }
}

fn is_safetensors(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "safetensors")
}

fn apply<B: Backend, M: ModuleSnapshot<B>>(model: &mut M, path: &Path) -> Result<ApplyResult> {
    if !path.is_file() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        return Err(read_err(path, e));
    }
    if is_safetensors(path) {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false);
        for (from, to) in REMAPS {
            store = store.with_key_remapping(from, to);
        }
        model.load_from(&mut store).map_err(|e| read_err(path, e))
    } else {
        let file = TorchFile::read(path).map_err(|e| read_err(path, e))?;
        let mut snapshots = Vec::new();
        for (key, t) in &file.tensors {
            if !t.dtype.is_float() {
                continue;
            }
            let values = file.to_f32(t).map_err(|e| read_err(path, e))?;
            let key = normalize_key(key);
            let path_stack = key.split('.').map(str::to_owned).collect();
            let mut snapshot = TensorSnapshot::from_data(
                TensorData::new(values, t.shape.clone()),
                path_stack,
                Vec::new(),
                ParamId::new(),
            );
            // As burn-store's own PyTorch reader does: matched by path alone.
            snapshot.container_stack = None;
            snapshot.tensor_id = None;
            snapshots.push(snapshot);
        }
        Ok(model.apply(snapshots, None, Some(Box::new(PyTorchToBurnAdapter)), false))
    }
}

/// Applies [`REMAPS`] to a key, for files read without burn-store.
fn normalize_key(key: &str) -> String {
    let mut k = key.strip_prefix("state_dict.").unwrap_or(key);
    k = k.strip_prefix("module.").unwrap_or(k);
    let k: Vec<&str> = k
        .split('.')
        .map(|seg| seg.strip_prefix('_').unwrap_or(seg))
        .collect();
    let mut k = format!(".{}.", k.join("."));
    for (from, to) in [
        (".Conv2d_", ".conv2d_"),
        (".Mixed_", ".mixed_"),
        (".AuxLogits.", ".aux_logits."),
    ] {
        if k.starts_with(from) {
            k = k.replacen(from, to, 1);
        }
    }
    let k = k
        .replace(".downsample.0.", ".downsample.conv.")
        .replace(".downsample.1.", ".downsample.bn.");
    k.trim_matches('.').to_owned()
}

/// Loads the checkpoint at `path` into `model` and returns it with a report.
pub fn load_checkpoint<B: Backend, M: ModuleSnapshot<B>>(
    model: M,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(M, ImportReport)> {
    let mut model = model;
    let result = apply(&mut model, path)?;
    let mut mismatch = KeyMismatch {
        missing: result.missing.iter().map(|(k, _)| k.clone()).collect(),
        unexpected: result
            .unused
            .iter()
            .filter(|k| !is_ignored(k) && !applied_under_burn_name(k, &result.applied))
            .cloned()
            .collect(),
        mis_shaped: result
            .errors
            .iter()
            .filter_map(|e| match e {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => Some(ShapeMismatch {
                    key: path.clone(),
                    expected: expected.to_vec(),
                    found: found.to_vec(),
                }),
                _ => None,
            })
            .collect(),
    };
    let other_errors: Vec<String> = result
        .errors
        .iter()
        .filter(|e| !matches!(e, ApplyError::ShapeMismatch { .. }))
        .map(ToString::to_string)
        .collect();
    if !other_errors.is_empty() {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, other_errors.join("; "));
        return Err(read_err(path, e));
    }
    mismatch.missing.sort();
    mismatch.unexpected.sort();
    mismatch.mis_shaped.sort_by(|a, b| a.key.cmp(&b.key));
    let mut head_reinitialized = false;
    if opts.new_head {
        // A classifier of another shape is expected here; so are the checkpoint's head
        // tensors the model lacks (a torchvision `fc` under a fastai head).
        let before = mismatch.clone();
        mismatch.mis_shaped.retain(|m| !is_head(&m.key));
        mismatch.unexpected.retain(|k| !is_head(k));
        mismatch.missing.retain(|k| !is_head(k));
        head_reinitialized = mismatch != before;
    }
    if !mismatch.is_empty() && !opts.allow_partial {
        return Err(Error::Mismatch {
            path: path.into(),
            mismatch,
        });
    }
    let report = ImportReport {
        path: path.into(),
        loaded: result.applied.len(),
        head_reinitialized,
        not_loaded: mismatch,
    };
    Ok((model, report))
}

/// One tensor of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's key, normalized as for loading.
    pub key: String,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// The tensor's element type, by name (e.g. `F32`).
    pub dtype: String,
}

/// What a checkpoint holds, and which architecture it fits.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Every tensor, sorted by key.
    pub tensors: Vec<TensorInfo>,
    /// The model the keys and shapes fit, when recognised.
    pub guess: Option<Guess>,
}

/// The model a checkpoint's keys and shapes fit.
///
/// `arch` is set when the model is one of vista's architectures; a family vista
/// recognises but does not build (a ResNet-101, an EfficientNet-B0) has `arch: None` and
/// says so in [`describe`](Guess::describe).
#[derive(Debug, Clone, PartialEq)]
pub struct Guess {
    /// The architecture, when vista builds it.
    pub arch: Option<Arch>,
    /// Classes of the checkpoint's classifier (`fc.weight`'s rows); `None` without one.
    pub classes: Option<usize>,
    /// Input channels of the stem.
    pub in_channels: usize,
    /// Width multiplier (stem channels over the published model's).
    pub width: f64,
    /// A ResNet's small-image stem (3x3, no max-pool).
    pub small_stem: bool,
    /// Inception v3's auxiliary classifier is present.
    pub aux_head: bool,
    /// The family, in words (e.g. `ResNet-50 (torchvision layout)`).
    pub family: String,
    /// The classifier's tensor has a shape no linear layer has (its rank).
    pub odd_head_rank: Option<usize>,
    /// How far a width may be from `width` and still give these channel counts.
    pub width_tolerance: f64,
}

/// The widest model a checkpoint's guess builds: 4 times the published channels.
pub const MAX_GUESSED_WIDTH: f64 = 4.0;

impl Guess {
    /// The model the checkpoint loads into, with its own class count, width and stem
    /// (1000 classes when it has no classifier); `None` when vista does not build it.
    pub fn model_config(&self) -> Option<ModelConfig> {
        // Shapes come from the file: a model vista would build many times wider than the
        // published one (gigabytes before a weight is read), or for other than RGB
        // input, is none it builds.
        if !(self.width > 0.0 && self.width <= MAX_GUESSED_WIDTH) || self.in_channels != 3 {
            return None;
        }
        Some(ModelConfig {
            arch: self.arch?,
            num_classes: self.classes.unwrap_or(1000),
            width: self.width,
            small_stem: self.small_stem,
            fastai_head: false,
        })
    }

    /// `model` shaped as the checkpoint `path` this guess is of: its architecture, width
    /// and stem wherever `fixed` leaves them open, whatever defaults `model` holds (a CPU
    /// recipe's narrow width, a small stem), so the weights fit. The class count stays
    /// `model`'s (a new head is trained). A setting `fixed` gives that the file
    /// contradicts is an error naming both.
    pub fn shape(&self, path: &Path, model: &ModelConfig, fixed: &Fixed) -> Result<ModelConfig> {
        let Some(found) = self.model_config() else {
            return Ok(model.clone());
        };
        let disagree = |setting, given: String, found: String| Error::CheckpointDisagrees {
            path: path.to_path_buf(),
            setting,
            given,
            found,
        };
        if let Some(arch) = fixed.arch.filter(|&a| a != found.arch) {
            return Err(disagree(
                "architecture",
                arch.to_string(),
                found.arch.to_string(),
            ));
        }
        // The width is read from channel counts, which are rounded: any width within
        // half a channel of the widest layer's count is the same model.
        let off = |w: f64| (w - found.width).abs() > self.width_tolerance + 1e-12;
        if let Some(width) = fixed.width.filter(|&w| off(w)) {
            return Err(disagree(
                "width",
                width.to_string(),
                found.width.to_string(),
            ));
        }
        if found.arch.has_small_stem()
            && let Some(stem) = fixed.small_stem.filter(|&s| s != found.small_stem)
        {
            return Err(disagree(
                "small stem",
                stem.to_string(),
                found.small_stem.to_string(),
            ));
        }
        Ok(ModelConfig {
            arch: found.arch,
            width: fixed.width.unwrap_or(found.width),
            small_stem: found.small_stem,
            ..model.clone()
        })
    }

    /// One line for people: family, classes, channels, width and stem.
    pub fn describe(&self) -> String {
        let classes = match (self.classes, self.odd_head_rank) {
            (Some(n), _) => format!("{n} classes"),
            (None, Some(rank)) => format!("a classifier of rank {rank}"),
            (None, None) => "no classifier".to_string(),
        };
        match self.arch {
            Some(Arch::EfficientnetLite0) => format!("{}, {classes}", self.family),
            Some(Arch::InceptionV3) => format!(
                "{}, {classes}, width x{}, {} auxiliary head",
                self.family,
                self.width,
                if self.aux_head { "with" } else { "without" }
            ),
            None if self.family.contains("EfficientNet") => self.family.clone(),
            _ => format!(
                "{}, {classes}, {} input channels, width x{}, {}",
                self.family,
                self.in_channels,
                self.width,
                if self.small_stem {
                    "small-image stem (3x3)"
                } else {
                    "standard stem (7x7, max-pool)"
                }
            ),
        }
    }
}

/// The model settings a user fixed (on the command line); `None` leaves one to the
/// checkpoint in [`Guess::shape`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Fixed {
    /// The architecture asked for.
    pub arch: Option<Arch>,
    /// The width asked for.
    pub width: Option<f64>,
    /// The small stem asked for (or not).
    pub small_stem: Option<bool>,
}

impl std::fmt::Display for Guess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Lists a checkpoint's tensors (keys normalized as for loading) and guesses its model.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let mut tensors: Vec<TensorInfo> = if is_safetensors(path) {
        use burn_store::ModuleStore;
        let mut store = SafetensorsStore::from_file(path);
        for (from, to) in REMAPS {
            store = store.with_key_remapping(from, to);
        }
        let snapshots = store.get_all_snapshots().map_err(|e| read_err(path, e))?;
        snapshots
            .iter()
            .map(|(k, s)| TensorInfo {
                key: k.clone(),
                shape: s.shape.to_vec(),
                dtype: format!("{:?}", s.dtype),
            })
            .collect()
    } else {
        // Only the pickle and the archive's directory are read: inspecting a file never
        // loads, let alone inflates, its storages.
        let tensors = TorchFile::read_tensor_list(path).map_err(|e| read_err(path, e))?;
        tensors
            .into_iter()
            .map(|(k, t)| TensorInfo {
                key: normalize_key(&k),
                shape: t.shape,
                dtype: format!("{:?}", t.dtype),
            })
            .collect()
    };
    tensors.sort_by(|a, b| a.key.cmp(&b.key));
    let guess = guess_architecture(&tensors);
    Ok(Inspection { tensors, guess })
}

/// Recognises torchvision's ResNets and Inception v3, and EfficientNet-Lite0, from keys
/// and shapes. Shapes come from the file, so every rank is checked before a dimension is
/// read: a checkpoint may hold a 0-dimensional `conv1.weight`.
fn guess_architecture(tensors: &[TensorInfo]) -> Option<Guess> {
    let shape = |k: &str| {
        tensors
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.shape.as_slice())
    };
    let has = |k: &str| shape(k).is_some();
    // A convolution's weight is [out, in, height, width]; with another rank the keys match
    // by accident and the file fits none of these models.
    let conv = |k: &str| match shape(k) {
        Some(&[out, input, height, _]) => Some((out, input, height)),
        _ => None,
    };
    // A linear layer's weight is [classes, features]; any other rank says nothing.
    let (classes, odd_head_rank) = match shape("fc.weight") {
        Some(&[classes, _]) => (Some(classes), None),
        Some(s) => (None, Some(s.len())),
        None => (None, None),
    };
    // The widest layer's channels give the width most precisely: the stem's few
    // channels are rounded (a width of 0.1 gives 6 of ResNet's 64, read as 0.094).
    let widest = |key: &str, published: f64| match shape(key) {
        Some(&[out, ..]) if out > 0 => Some((out as f64 / published, 0.5 / published)),
        _ => None,
    };
    let guess = |arch,
                 family: &str,
                 in_channels,
                 (width, width_tolerance): (f64, f64),
                 small_stem,
                 aux_head| Guess {
        arch,
        classes,
        in_channels,
        width,
        small_stem,
        aux_head,
        family: family.to_string(),
        odd_head_rank,
        width_tolerance,
    };
    if has("conv_stem.weight") {
        let (out, input, _) = conv("conv_stem.weight")?;
        let lite = !tensors.iter().any(|t| t.key.contains("se_reduce"));
        if lite
            && out == 32
            && has("blocks.15.project_conv.weight")
            && !has("blocks.16.project_conv.weight")
        {
            return Some(guess(
                Some(Arch::EfficientnetLite0),
                "EfficientNet-Lite0 (EfficientNet-PyTorch layout)",
                input,
                (1.0, 0.0),
                false,
                false,
            ));
        }
        return Some(guess(
            None,
            "an EfficientNet (EfficientNet-PyTorch layout) other than Lite0",
            input,
            (1.0, 0.0),
            false,
            false,
        ));
    }
    if has("conv2d_1a_3x3.conv.weight") && has("mixed_7c.branch_pool.conv.weight") {
        let (out, input, _) = conv("conv2d_1a_3x3.conv.weight")?;
        return Some(guess(
            Some(Arch::InceptionV3),
            "Inception v3 (torchvision layout)",
            input,
            widest("mixed_7c.branch_pool.conv.weight", 192.0)
                .unwrap_or((out as f64 / 32.0, 0.5 / 32.0)),
            false,
            has("aux_logits.fc.weight"),
        ));
    }
    let (out, input, kernel) = conv("conv1.weight")?;
    if !has("layer4.0.conv1.weight") {
        return None;
    }
    let (arch, family) = if has("layer4.0.conv3.weight") {
        if has("layer3.5.conv1.weight") && !has("layer3.6.conv1.weight") {
            (Some(Arch::Resnet50), "ResNet-50")
        } else {
            (None, "a bottleneck ResNet")
        }
    } else if has("layer3.5.conv1.weight") && !has("layer3.6.conv1.weight") {
        (Some(Arch::Resnet34), "ResNet-34")
    } else if has("layer1.1.conv1.weight") && !has("layer1.2.conv1.weight") {
        (Some(Arch::Resnet18), "ResNet-18")
    } else {
        (None, "a basic-block ResNet")
    };
    Some(guess(
        arch,
        &format!("{family} (torchvision layout)"),
        input,
        widest("layer4.0.conv1.weight", 512.0).unwrap_or((out as f64 / 64.0, 0.5 / 64.0)),
        kernel != 7,
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str, shape: &[usize]) -> TensorInfo {
        TensorInfo {
            key: key.into(),
            shape: shape.to_vec(),
            dtype: "F32".into(),
        }
    }

    #[test]
    fn the_guess_checks_ranks_before_reading_dimensions() {
        let resnet = |stem: &[usize], fc: &[usize]| {
            guess_architecture(&[
                info("conv1.weight", stem),
                info("layer4.0.conv1.weight", &[8, 8, 3, 3]),
                info("fc.weight", fc),
            ])
        };
        assert_eq!(resnet(&[], &[10, 64]), None);
        assert_eq!(resnet(&[64], &[10, 64]), None);
        let guess = resnet(&[64, 3, 7, 7], &[]).unwrap().describe();
        assert!(guess.contains("a classifier of rank 0"), "{guess}");
        let guess = resnet(&[64, 3, 7, 7], &[10, 64]).unwrap();
        assert_eq!(guess.classes, Some(10));
        assert!(
            guess.describe().contains("10 classes, 3 input channels"),
            "{guess}"
        );

        let efficientnet = |stem: &[usize]| {
            guess_architecture(&[info("conv_stem.weight", stem), info("fc.weight", &[])])
        };
        assert_eq!(efficientnet(&[]), None);
        assert!(efficientnet(&[32, 3, 3, 3]).is_some());

        let inception = |stem: &[usize]| {
            guess_architecture(&[
                info("conv2d_1a_3x3.conv.weight", stem),
                info("mixed_7c.branch_pool.conv.weight", &[]),
                info("fc.weight", &[7]),
            ])
        };
        assert_eq!(inception(&[]), None);
        let guess = inception(&[32, 3, 3, 3]).unwrap();
        assert_eq!(guess.arch, Some(Arch::InceptionV3));
        assert!(
            guess.describe().contains("a classifier of rank 1"),
            "{guess}"
        );
    }

    #[test]
    fn the_width_comes_from_the_widest_layer_and_is_bounded() {
        let resnet = |stem: usize, widest: usize| {
            guess_architecture(&[
                info("conv1.weight", &[stem, 3, 7, 7]),
                info("layer1.1.conv1.weight", &[stem, stem, 3, 3]),
                info("layer4.0.conv1.weight", &[widest, widest, 3, 3]),
                info("fc.weight", &[10, widest]),
            ])
            .unwrap()
        };
        // `--width 0.1`: 6 stem channels (0.094) but 51 of layer4's 512 (0.0996).
        let guess = resnet(6, 51);
        let fixed = Fixed {
            width: Some(0.1),
            ..Fixed::default()
        };
        let path = Path::new("w.pth");
        let shaped = guess.shape(path, &ModelConfig::default(), &fixed).unwrap();
        assert_eq!((shaped.arch, shaped.width), (Arch::Resnet18, 0.1));
        let wrong = Fixed {
            width: Some(0.125),
            ..Fixed::default()
        };
        assert!(guess.shape(path, &ModelConfig::default(), &wrong).is_err());
        // A hostile 7000-channel stem asks for a model 109 times too wide: not built.
        let wide = resnet(7000, 56000);
        assert_eq!(wide.model_config(), None);
        assert_eq!(
            wide.shape(path, &ModelConfig::default(), &Fixed::default())
                .unwrap(),
            ModelConfig::default()
        );
    }
}
