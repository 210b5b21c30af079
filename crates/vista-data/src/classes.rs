//! The class map: class names in label order, saved with every run so ids keep their meaning.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};

/// Class names of the Intel Image Classification data in label-id order, as the
/// Analytics Vidhya `train.csv` numbers them (0 = buildings ... 5 = street). The Kaggle
/// folders sort to the same order.
pub const INTEL_CLASSES: [&str; 6] = [
    "buildings",
    "forest",
    "glacier",
    "mountain",
    "sea",
    "street",
];

/// Class names indexed by label id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassMap {
    pub classes: Vec<String>,
}

impl ClassMap {
    pub fn new(classes: Vec<String>) -> Self {
        Self { classes }
    }

    pub fn intel() -> Self {
        Self::new(INTEL_CLASSES.iter().map(|s| (*s).to_owned()).collect())
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The label id of a class name.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.classes
            .iter()
            .position(|c| c == name)
            .map(|i| i as u32)
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        self.classes.get(id as usize).map(String::as_str)
    }

    /// Reads a `classes.txt`: one class name per line, in label order; blank lines ignored.
    pub fn read_txt(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Ok(Self::new(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        crate::fsutil::write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })
    }
}
