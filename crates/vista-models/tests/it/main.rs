//! Integration tests of vista-models: parity with PyTorch on the fixtures made by
//! `tests/data/models/make_resnet_fixtures.py`, and checkpoint errors.

mod efficientnet;
mod gan;
mod groups;
mod parity;

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's `tests/data/models` folder.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/models")
}

/// Reads a little-endian f32 file.
pub fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
