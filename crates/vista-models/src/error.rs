//! Errors of the model layer; checkpoint errors name the file and every mismatched key.

use std::fmt;
use std::path::PathBuf;

/// A tensor whose shape in the checkpoint differs from the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The tensor's key in the model's naming (e.g. `layer1.0.conv1.weight`).
    pub key: String,
    /// The shape of the model's parameter.
    pub expected: Vec<usize>,
    /// The shape of the checkpoint's tensor, in burn's layout.
    pub found: Vec<usize>,
}

/// How a checkpoint's keys differ from a model's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMismatch {
    /// Parameters the model has and the checkpoint lacks.
    pub missing: Vec<String>,
    /// Tensors the checkpoint has and the model does not use.
    pub unexpected: Vec<String>,
    /// Tensors both have, with different shapes.
    pub mis_shaped: Vec<ShapeMismatch>,
}

impl KeyMismatch {
    /// Whether the checkpoint and the model agree: nothing missing, unexpected or
    /// mis-shaped.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mis_shaped.is_empty()
    }
}

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, title: &str, items: &[String]| -> fmt::Result {
            if !items.is_empty() {
                writeln!(f, "  {title} ({}):", items.len())?;
                for k in items {
                    writeln!(f, "    {k}")?;
                }
            }
            Ok(())
        };
        list(f, "missing from the checkpoint", &self.missing)?;
        list(f, "unexpected in the checkpoint", &self.unexpected)?;
        if !self.mis_shaped.is_empty() {
            writeln!(
                f,
                "  wrong shape ({}; linear weights shown in burn's [in, out] layout):",
                self.mis_shaped.len()
            )?;
            for m in &self.mis_shaped {
                writeln!(
                    f,
                    "    {}: model expects {:?}, checkpoint has {:?}",
                    m.key, m.expected, m.found
                )?;
            }
        }
        Ok(())
    }
}

/// What building a model or loading its weights can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The checkpoint file could not be read or parsed.
    #[error("{path}: cannot read checkpoint: {source}")]
    Read {
        /// The checkpoint file.
        path: PathBuf,
        /// The I/O or format error underneath.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The checkpoint does not fit the model; nothing was loaded.
    #[error(
        "{path}: checkpoint does not fit the model (pass `allow_partial` to load what fits):\n{mismatch}"
    )]
    Mismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// Every missing, unexpected and mis-shaped key.
        mismatch: KeyMismatch,
    },
    /// A model setting is out of range.
    #[error("invalid model setting: {0}")]
    Config(String),
    /// A setting given for the model contradicts the checkpoint it is to start from.
    #[error("{path}: the checkpoint's model has {setting} {found}, not the {given} asked for")]
    CheckpointDisagrees {
        /// The checkpoint file.
        path: PathBuf,
        /// The setting: `architecture`, `width` or `small stem`.
        setting: &'static str,
        /// The value asked for.
        given: String,
        /// The value the checkpoint's shapes say.
        found: String,
    },
    /// A model could not be written for other tools.
    #[error("exporting the model: {0}")]
    Export(String),
    /// No architecture has this name.
    #[error(
        "unknown architecture `{0}` (known: resnet18, resnet34, resnet50, inception_v3, efficientnet_lite0)"
    )]
    UnknownArch(String),
}

/// `std::result::Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
