//! Integration tests of vista-models: parity with PyTorch on the fixtures made by
//! `tests/data/models/make_resnet_fixtures.py`, checkpoint errors, and the checkpoint
//! reader against hostile files (`hostile.rs`), whose memory the counting allocator
//! below measures.

mod alloc;
mod efficientnet;
mod export;
mod gan;
mod groups;
mod hostile;
mod parity;

/// Counts each thread's allocations so `hostile.rs` can bound the reader's peak memory.
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

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

/// A fixture input batch as a tensor.
pub fn input(name: &str, shape: [usize; 4]) -> burn::tensor::Tensor<burn::backend::Flex, 4> {
    let data = burn::tensor::TensorData::new(read_f32(&format!("{name}.input.f32")), shape);
    burn::tensor::Tensor::from_data(data, &Default::default())
}

/// Asserts that `got` matches PyTorch's values in `file` within 1e-4.
pub fn assert_matches_pytorch<const D: usize>(
    got: burn::tensor::Tensor<burn::backend::Flex, D>,
    file: &str,
) {
    let got = got.into_data().to_vec::<f32>().unwrap();
    let want = read_f32(file);
    assert_eq!(
        got.len(),
        want.len(),
        "{file}: {} values, PyTorch has {}",
        got.len(),
        want.len()
    );
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        worst < 1e-4,
        "{file}: differs from PyTorch by {worst}\n got {got:?}\nwant {want:?}"
    );
}
