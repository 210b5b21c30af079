//! Seed derivation: independent, reproducible random streams from one user seed.
//!
//! Every random choice of a run draws from `derive_seed(seed, [stream, ...])` through
//! ChaCha8, so results do not depend on thread timing or worker count. The streams are
//! named here, in one table: [`Stream`]. Their numbers are part of the run format (a
//! resumed run must draw what the uninterrupted one drew), so they never change.

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

/// The named random streams of a run. A stream's seed is
/// `derive_seed(seed, [stream number, index...])` with the indices listed on each variant.
///
/// Two streams share a number only where they belong to different trainers (the
/// classifier's and the GAN's never draw in one run) or take a different number of
/// indices; the test below keeps it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stream {
    /// The stratified split of one class: `[class]`.
    Split,
    /// The order of one epoch's training images: `[epoch]` (classifier and GAN).
    EpochOrder,
    /// One classifier batch's augmentation and mixup draws: `[epoch, batch]`.
    Batch,
    /// The backend's generator at the start of a classifier epoch: `[epoch]`.
    BackendEpoch,
    /// The dropout seed of one classifier epoch's shard: `[epoch, shard]`.
    Dropout,
    /// A network's initial weights (classifier, generator and critic): `[]`.
    Init,
    /// Which generated images join the training images (`extra_ratio`): `[]`.
    ExtraPick,
    /// One GAN step, parent of its noise: `[epoch, batch]`.
    GanStep,
    /// The classes one GAN step generates: `[epoch, batch]`.
    GanLabels,
    /// The GAN's per-epoch sample grid noise: `[]`.
    GanGrid,
    /// The folds of out-of-fold cleaning: `[class]`.
    Fold,
    /// The views of test-time augmentation: `[image, view]`.
    Tta,
    /// The random tie-break of a vote: `[image]`.
    Tie,
}

impl Stream {
    /// The stream's number: the first element of every seed path it derives.
    pub const fn id(self) -> u64 {
        match self {
            Stream::Split => 0x0005_9117,
            Stream::EpochOrder => 1,
            Stream::Batch | Stream::GanStep => 2,
            Stream::BackendEpoch | Stream::GanLabels => 3,
            Stream::Dropout | Stream::Init => 4,
            Stream::GanGrid => 5,
            Stream::ExtraPick => 6,
            Stream::Fold => 0x666f_6c64,
            Stream::Tta => 0x0074_7461,
            Stream::Tie => 0x7469_6573,
        }
    }

    /// How many indices follow the stream's number.
    pub const fn arity(self) -> usize {
        match self {
            Stream::Init | Stream::ExtraPick | Stream::GanGrid => 0,
            Stream::Split | Stream::EpochOrder | Stream::BackendEpoch | Stream::Fold => 1,
            Stream::Tie => 1,
            Stream::Batch | Stream::Dropout | Stream::GanStep | Stream::GanLabels => 2,
            Stream::Tta => 2,
        }
    }

    /// The seed of this stream at `index` under the run's `seed`.
    ///
    /// ```
    /// use vista_format::{Stream, derive_seed};
    /// let s = Stream::Batch.seed(42, &[3, 7]);
    /// assert_eq!(s, derive_seed(42, &[2, 3, 7]));
    /// ```
    pub fn seed(self, seed: u64, index: &[u64]) -> u64 {
        debug_assert_eq!(
            index.len(),
            self.arity(),
            "{self:?} takes {} indices",
            self.arity()
        );
        let mut path = Vec::with_capacity(index.len() + 1);
        path.push(self.id());
        path.extend_from_slice(index);
        derive_seed(seed, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Stream; 13] = [
        Stream::Split,
        Stream::EpochOrder,
        Stream::Batch,
        Stream::BackendEpoch,
        Stream::Dropout,
        Stream::Init,
        Stream::ExtraPick,
        Stream::GanStep,
        Stream::GanLabels,
        Stream::GanGrid,
        Stream::Fold,
        Stream::Tta,
        Stream::Tie,
    ];

    const GAN_ONLY: [Stream; 3] = [Stream::GanStep, Stream::GanLabels, Stream::GanGrid];
    const CLASSIFIER_ONLY: [Stream; 3] = [Stream::Batch, Stream::BackendEpoch, Stream::Dropout];

    #[test]
    fn no_two_streams_of_one_trainer_draw_the_same_seeds() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                let apart = (GAN_ONLY.contains(a) && CLASSIFIER_ONLY.contains(b))
                    || (GAN_ONLY.contains(b) && CLASSIFIER_ONLY.contains(a));
                let same = a.id() == b.id() && a.arity() == b.arity();
                assert!(!same || apart, "{a:?} and {b:?} draw the same seeds");
            }
        }
    }

    #[test]
    fn stream_numbers_are_part_of_the_format() {
        // Changing one would make a resumed run of an older version draw other numbers.
        assert_eq!(Stream::EpochOrder.seed(42, &[0]), derive_seed(42, &[1, 0]));
        assert_eq!(Stream::Init.seed(7, &[]), derive_seed(7, &[4]));
        assert_eq!(derive_seed(42, &[1, 0]), 0xf138_d5b1_6eb0_0dfc);
    }
}
