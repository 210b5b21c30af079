//! Seed derivation: independent, reproducible random streams from one user seed.

/// SplitMix64's finalizer: a bijective mix with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for the stream named by `path` (e.g. `[epoch, batch]`) under `seed`.
/// Workers seed each batch this way, so the output does not depend on thread timing.
pub fn derive_seed(seed: u64, path: &[u64]) -> u64 {
    path.iter().fold(mix(seed), |acc, &p| {
        mix(acc ^ mix(p.wrapping_add(0x9E37_79B9_7F4A_7C15)))
    })
}
