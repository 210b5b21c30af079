//! The class map: class names in label order, saved with every run so ids keep their meaning.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use vista_format::check_class_name;

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

/// The largest class list file read (`classes.txt`, `classes.json`).
pub const MAX_CLASS_FILE_BYTES: u64 = 16 << 20;

/// Class names indexed by label id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassMap {
    /// The class names; the name at index `i` is the class with label id `i`.
    pub classes: Vec<String>,
}

impl ClassMap {
    /// A class map of names already checked with [`check_class_name`] (the dataset
    /// readers check every name they meet; use [`ClassMap::checked`] for names from
    /// elsewhere).
    pub fn new(classes: Vec<String>) -> Self {
        Self { classes }
    }

    /// A class map whose every name passes [`check_class_name`] and appears once;
    /// `source` is the file the names came from, for the error.
    pub fn checked(classes: Vec<String>, source: &Path) -> Result<Self> {
        vista_format::check_class_list(&classes, source)?;
        Ok(Self { classes })
    }

    /// The six classes of the Intel Image Classification data ([`INTEL_CLASSES`]).
    pub fn intel() -> Self {
        Self::new(INTEL_CLASSES.iter().map(|s| (*s).to_owned()).collect())
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// True when the map holds no class.
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

    /// The class name of a label id; `None` when the id is out of range.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.classes.get(id as usize).map(String::as_str)
    }

    /// Reads a `classes.txt`: one class name per line, in label order; blank lines ignored.
    pub fn read_txt(path: &Path) -> Result<Self> {
        let text = vista_format::read_limited(path, MAX_CLASS_FILE_BYTES)?;
        let text = String::from_utf8(text)
            .map_err(|_| Error::Config(format!("{}: not UTF-8 text", path.display())))?;
        let mut names = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let name = line.trim();
            if name.is_empty() {
                continue;
            }
            check_class_name(name).map_err(|why| Error::BadClassName {
                path: path.to_path_buf(),
                line: i + 1,
                name: name.to_owned(),
                why,
            })?;
            names.push(name.to_owned());
        }
        Self::checked(names, path)
    }

    /// Writes the map as JSON (`{"classes": [...]}`) to `path`, atomically; read it back
    /// with [`ClassMap::load`].
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        Ok(vista_format::write_atomic(path, &bytes)?)
    }

    /// Reads a class map saved by [`ClassMap::save`]; every name is checked again, since
    /// a run folder may come from someone else.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = vista_format::read_limited(path, MAX_CLASS_FILE_BYTES)?;
        let map: ClassMap = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        Self::checked(map.classes, path)
    }
}
