//! The noisy-label benchmark: flip a seeded share of the training labels, then see how
//! many of the flipped images the detection finds.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vista_format::Detection;

use crate::detect::{Flag, Reason};

/// Gives `fraction` of the labels (chosen at random, seeded) another class, drawn
/// uniformly among the other `num_classes - 1`; returns the indices changed, sorted.
pub fn flip_labels(labels: &mut [u32], num_classes: usize, fraction: f64, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = ((labels.len() as f64) * fraction).round() as usize;
    let mut order: Vec<usize> = (0..labels.len()).collect();
    // A partial Fisher–Yates shuffle picks `n` distinct indices.
    for i in 0..n.min(order.len()) {
        let j = rng.random_range(i..order.len());
        order.swap(i, j);
    }
    let mut flipped: Vec<usize> = order[..n.min(order.len())].to_vec();
    flipped.sort_unstable();
    if num_classes < 2 {
        return Vec::new();
    }
    for &i in &flipped {
        let shift = rng.random_range(1..num_classes as u32);
        labels[i] = (labels[i] + shift) % num_classes as u32;
    }
    flipped
}

/// Like [`flip_labels`], but each image's fate depends only on its name and the seed,
/// so the same images are flipped whatever else the listing holds (a cleaned view that
/// leaves some out flips the rest exactly as before). About `fraction` are flipped.
pub fn flip_labels_by_name(
    names: &[String],
    labels: &mut [u32],
    num_classes: usize,
    fraction: f64,
    seed: u64,
) -> Vec<usize> {
    if num_classes < 2 {
        return Vec::new();
    }
    let mut flipped = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = ChaCha8Rng::seed_from_u64(vista_data::derive_seed(seed, &[h]));
        if rng.random::<f64>() < fraction {
            let shift = rng.random_range(1..num_classes as u32);
            labels[i] = (labels[i] + shift) % num_classes as u32;
            flipped.push(i);
        }
    }
    flipped
}

/// Scores the flags of `reason` (or all flags) against the flipped images' names.
pub fn score_detection(
    flags: &[Flag],
    reason: Option<Reason>,
    flipped: &HashSet<String>,
) -> Detection {
    let flagged: Vec<&Flag> = flags
        .iter()
        .filter(|f| reason.is_none_or(|r| f.reason == r))
        .collect();
    let hits = flagged
        .iter()
        .filter(|f| flipped.contains(&f.image))
        .count();
    Detection {
        flipped: flipped.len(),
        flagged: flagged.len(),
        hits,
        precision: if flagged.is_empty() {
            0.0
        } else {
            hits as f64 / flagged.len() as f64
        },
        recall: if flipped.is_empty() {
            0.0
        } else {
            hits as f64 / flipped.len() as f64
        },
    }
}
