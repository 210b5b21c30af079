//! Integration tests of vista-data on the committed fixtures (`tests/data` at the
//! repository root) and on datasets generated in temporary folders.

mod hostile;
mod layouts;
mod loader;

use std::path::PathBuf;

/// The repository's `tests/data` folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// The repository's `data` folder.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

pub fn quiet() -> vista_data::LoadOptions {
    vista_data::LoadOptions {
        observer: Default::default(),
        ..Default::default()
    }
}
