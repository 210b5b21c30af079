//! Seeded, stratified train/valid splits.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use vista_format::Stream;

/// Splits item positions into (train, valid) so each class keeps its share in both:
/// `round(n_c * valid_pct)` items of each class `c` go to valid. Both lists are sorted.
pub fn stratified_split(labels: &[u32], valid_pct: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let n_classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut by_class = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (class, mut items) in by_class.into_iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(Stream::Split.seed(seed, &[class as u64]));
        items.shuffle(&mut rng);
        let n_valid = ((items.len() as f32) * valid_pct.clamp(0.0, 1.0)).round() as usize;
        valid.extend_from_slice(&items[..n_valid]);
        train.extend_from_slice(&items[n_valid..]);
    }
    train.sort_unstable();
    valid.sort_unstable();
    (train, valid)
}
