//! The images a run trains on and the edits made to them before it starts: images left
//! out (flagged by cleaning, a random subset), and extra images (generated ones) added to
//! the training part only.

use std::sync::Arc;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use vista_data::{ClassMap, Images, Loaded};

/// Images and labels to train on (the dataset's training part, decoded).
#[derive(Debug, Clone)]
pub struct TrainData {
    /// The decoded images: the real ones first, then the `extra` ones.
    pub images: Images,
    /// The class index of each image, in the same order.
    pub labels: Arc<Vec<u32>>,
    /// The classes the labels index.
    pub classes: ClassMap,
    /// The last `extra` images are extra training material (generated ones): kept out
    /// of the validation split and the normalization statistics.
    pub extra: usize,
    /// The dataset's own validation set; without one a run splits `valid_pct` of the
    /// real images off as its validation set. Edits of the training images (subsets,
    /// extra images, flipped labels) leave it as it is.
    pub valid: Option<ValidSet>,
}

/// A validation set given with the data (a `valid/` folder, a CSV's `is_valid` rows, a
/// `--valid` folder) rather than split off the training images.
#[derive(Debug, Clone)]
pub struct ValidSet {
    /// The decoded images.
    pub images: Images,
    /// The class index of each image, in the same order.
    pub labels: Arc<Vec<u32>>,
}

impl ValidSet {
    /// A validation set of these images and labels.
    pub fn new(images: impl Into<Images>, labels: Vec<u32>) -> Self {
        let images = images.into();
        assert_eq!(images.len(), labels.len(), "one label per validation image");
        Self {
            images,
            labels: Arc::new(labels),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True without images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

impl TrainData {
    /// Real images and labels only.
    pub fn new(images: impl Into<Images>, labels: Vec<u32>, classes: ClassMap) -> Self {
        let images = images.into();
        assert_eq!(images.len(), labels.len(), "one label per image");
        Self {
            images,
            labels: Arc::new(labels),
            classes,
            extra: 0,
            valid: None,
        }
    }

    /// Uses `valid` as the validation set instead of a split of the training images; an
    /// empty one changes nothing.
    pub fn with_valid(mut self, valid: ValidSet) -> Self {
        self.valid = (!valid.is_empty()).then_some(valid);
        self
    }

    /// Number of real (not extra) images.
    pub fn real(&self) -> usize {
        self.labels.len() - self.extra
    }

    /// The real images at the indices `keep`, in that order, and every extra image.
    pub fn subset(&self, keep: &[usize]) -> Self {
        let real = self.real();
        assert!(
            keep.iter().all(|&i| i < real),
            "an index past the real images"
        );
        let pick = keep.iter().copied().chain(real..self.labels.len());
        Self {
            images: self.images.pick(pick.clone()),
            labels: Arc::new(pick.map(|i| self.labels[i]).collect()),
            classes: self.classes.clone(),
            extra: self.extra,
            valid: self.valid.clone(),
        }
    }

    /// `n` real images drawn at random with `seed`, kept in their order; all of them
    /// when there are no more than `n`.
    pub fn random_subset(&self, n: usize, seed: u64) -> Self {
        if n >= self.real() {
            return self.clone();
        }
        let mut pick: Vec<usize> = (0..self.real()).collect();
        pick.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        pick.truncate(n);
        pick.sort_unstable();
        self.subset(&pick)
    }

    /// Adds extra training images (after any earlier ones): the training part gets
    /// them, the validation split and the normalization statistics do not.
    pub fn with_extra(mut self, images: impl Into<Images>, labels: Vec<u32>) -> Self {
        let images = images.into();
        assert_eq!(images.len(), labels.len(), "one label per extra image");
        self.extra += images.len();
        self.images = self.images.chain(images);
        self.labels = Arc::new(self.labels.iter().copied().chain(labels).collect());
        self
    }
}

impl From<Loaded> for TrainData {
    /// The dataset's decoded training images with their labels, and its own validation
    /// set when it has one.
    fn from(loaded: Loaded) -> Self {
        let labels = loaded.dataset.train.iter().map(|s| s.label).collect();
        let valid_labels = loaded.dataset.valid.iter().map(|s| s.label).collect();
        Self::new(loaded.train, labels, loaded.dataset.classes)
            .with_valid(ValidSet::new(loaded.valid, valid_labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    /// Images told apart by their width.
    fn data(n: u32) -> TrainData {
        TrainData::new(
            (1..=n).map(|w| RgbImage::new(w, 1)).collect::<Vec<_>>(),
            (0..n).map(|i| i % 2).collect(),
            ClassMap::new(vec!["a".into(), "b".into()]),
        )
    }

    fn widths(d: &TrainData) -> Vec<u32> {
        d.images.iter().map(|i| i.width()).collect()
    }

    #[test]
    fn extra_images_stay_last_through_a_subset() {
        let d = data(4).with_extra(vec![RgbImage::new(9, 1)], vec![1]);
        assert_eq!((d.real(), d.extra), (4, 1));
        let s = d.subset(&[3, 0]);
        assert_eq!(widths(&s), [4, 1, 9]);
        assert_eq!(*s.labels, [1, 0, 1]);
        assert_eq!((s.real(), s.extra), (2, 1));
    }

    #[test]
    fn a_random_subset_depends_on_the_seed_alone_and_keeps_the_order() {
        let d = data(50);
        let a = d.random_subset(10, 7);
        assert_eq!(widths(&a), widths(&d.random_subset(10, 7)));
        assert_ne!(widths(&a), widths(&d.random_subset(10, 8)));
        assert!(widths(&a).windows(2).all(|w| w[0] < w[1]));
        assert_eq!(d.random_subset(60, 7).real(), 50);
    }
}
