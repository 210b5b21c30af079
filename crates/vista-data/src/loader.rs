//! A multi-threaded, prefetching batch loader whose output depends only on the seed.
//!
//! Worker threads take batch numbers in order from a shared counter, build each batch
//! (augment, normalize, mixup) with an RNG seeded from `(seed, epoch, batch)`, and send
//! it through a bounded channel; the consumer puts batches back in order. So the batches
//! are the same whatever the number of workers or their timing, and decode-free
//! augmentation of the next batches overlaps the training step on the current one.
//! The image size is an argument of [`Loader::epoch`], so progressive resizing changes
//! it between epochs without rebuilding anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::augment::{AugmentConfig, augment, resize_plain};
use crate::batch::Batch;
use crate::images::Images;
use crate::mixup::mixup;
use vista_format::Normalize;
use vista_format::Stream;

/// How batches are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoaderConfig {
    /// Images per batch; must be positive.
    pub batch_size: usize,
    /// Reshuffle the items every epoch (training); keep their order otherwise.
    pub shuffle: bool,
    /// Leave out a last, smaller batch.
    pub drop_last: bool,
    /// Random augmentation; `None` resizes only (validation, test).
    pub augment: Option<AugmentConfig>,
    /// Mixup's α; `None` disables mixup.
    pub mixup_alpha: Option<f32>,
    /// Per-channel mean and standard deviation the images are normalized with, after
    /// scaling to 0..1 (ImageNet's by default).
    pub normalize: Normalize,
    /// Aspect ratios kept as they are when resizing to a square; wider or taller images
    /// are centre-cropped to this range first.
    pub ratio: (f32, f32),
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    /// Seed of every random choice (order, augmentation, mixup): with the epoch and batch
    /// number, it alone decides each batch.
    pub seed: u64,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            shuffle: false,
            drop_last: false,
            augment: None,
            mixup_alpha: None,
            normalize: Normalize::IMAGENET,
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            workers: 0,
            prefetch: 4,
            seed: 0,
        }
    }
}

impl LoaderConfig {
    /// fastai's training loader: shuffled, the last partial batch dropped, with
    /// `augment` and mixup's `mixup_alpha`.
    pub fn train(
        batch_size: usize,
        augment: Option<AugmentConfig>,
        mixup_alpha: Option<f32>,
        normalize: Normalize,
        seed: u64,
    ) -> Self {
        Self {
            batch_size,
            shuffle: true,
            drop_last: true,
            augment,
            mixup_alpha,
            normalize,
            seed,
            ..Self::default()
        }
    }

    /// The validation loader that goes with this training one (fastai's): twice the
    /// batch, in order, every image, no augmentation and no mixup.
    pub fn for_valid(&self) -> Self {
        Self {
            batch_size: self.batch_size * 2,
            shuffle: false,
            drop_last: false,
            augment: None,
            mixup_alpha: None,
            ..self.clone()
        }
    }
}

/// Batches over a fixed list of decoded images ([`Images`]).
#[derive(Debug, Clone)]
pub struct Loader {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    images: Images,
    labels: Arc<Vec<u32>>,
    /// Positions in `images` this loader serves.
    items: Vec<usize>,
    cfg: LoaderConfig,
}

impl Loader {
    /// A loader over `items`, positions into `images` and `labels` (which align).
    ///
    /// # Panics
    /// When `images` and `labels` differ in length, an item is out of range, or the batch
    /// size is zero.
    pub fn new(
        images: impl Into<Images>,
        labels: Arc<Vec<u32>>,
        items: Vec<usize>,
        cfg: LoaderConfig,
    ) -> Self {
        let images = images.into();
        assert_eq!(images.len(), labels.len(), "images and labels must align");
        assert!(items.iter().all(|&i| i < images.len()), "item out of range");
        assert!(cfg.batch_size > 0, "batch size must be positive");
        Self {
            shared: Arc::new(Shared {
                images,
                labels,
                items,
                cfg,
            }),
        }
    }

    /// The settings this loader makes batches with.
    pub fn config(&self) -> &LoaderConfig {
        &self.shared.cfg
    }

    /// The number of images this loader serves in one epoch (before `drop_last`).
    pub fn len_items(&self) -> usize {
        self.shared.items.len()
    }

    /// Number of batches in one epoch.
    pub fn len_batches(&self) -> usize {
        let (n, b) = (self.shared.items.len(), self.shared.cfg.batch_size);
        if self.shared.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The item order of `epoch`: shuffled with the epoch's seed, or as given.
    fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order = self.shared.items.clone();
        if self.shared.cfg.shuffle {
            let mut rng =
                ChaCha8Rng::seed_from_u64(Stream::EpochOrder.seed(self.shared.cfg.seed, &[epoch]));
            order.shuffle(&mut rng);
        }
        order
    }

    /// Builds batch `b` of `epoch` at `size` pixels on the calling thread.
    pub fn batch(&self, epoch: u64, b: usize, size: u32) -> Batch {
        build_batch(&self.shared, &self.order(epoch), epoch, b, size)
    }

    /// Iterates over the batches of `epoch` at `size` x `size` pixels, built ahead by
    /// worker threads.
    pub fn epoch(&self, epoch: u64, size: u32) -> Epoch {
        let order = Arc::new(self.order(epoch));
        let n_batches = self.len_batches();
        let workers = match self.shared.cfg.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(n_batches.max(1));
        let (tx, rx) = sync_channel(self.shared.cfg.prefetch.max(1));
        let next = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..workers)
            .map(|_| {
                let (shared, order, next, stop, tx) = (
                    self.shared.clone(),
                    order.clone(),
                    next.clone(),
                    stop.clone(),
                    tx.clone(),
                );
                std::thread::spawn(move || {
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= n_batches || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let batch = build_batch(&shared, &order, epoch, b, size);
                        if tx.send((b, batch)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Epoch {
            rx: Some(rx),
            pending: BTreeMap::new(),
            next: 0,
            n_batches,
            stop,
            handles,
        }
    }
}

fn build_batch(shared: &Shared, order: &[usize], epoch: u64, b: usize, size: u32) -> Batch {
    let cfg = &shared.cfg;
    let start = b * cfg.batch_size;
    let items = &order[start..(start + cfg.batch_size).min(order.len())];
    let s = size as usize;
    let image_len = 3 * s * s;
    let mut images = vec![0.0f32; items.len() * image_len];
    let mut rng = ChaCha8Rng::seed_from_u64(Stream::Batch.seed(cfg.seed, &[epoch, b as u64]));
    for (&item, out) in items.iter().zip(images.chunks_exact_mut(image_len)) {
        let src = shared.images.get(item);
        match &cfg.augment {
            Some(aug) => augment(&src, size, aug, &mut rng, out),
            None => resize_plain(&src, size, cfg.ratio, out),
        }
    }
    cfg.normalize.apply(&mut images, s);
    let labels: Vec<u32> = items.iter().map(|&i| shared.labels[i]).collect();
    let mix = cfg
        .mixup_alpha
        .map(|alpha| mixup(&mut images, &labels, image_len, alpha, &mut rng));
    Batch {
        images,
        labels,
        mix,
        size: s,
        indices: items.to_vec(),
    }
}

/// The batches of one epoch, in order. Dropping it early stops the workers.
#[derive(Debug)]
pub struct Epoch {
    rx: Option<Receiver<(usize, Batch)>>,
    pending: BTreeMap<usize, Batch>,
    next: usize,
    n_batches: usize,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Iterator for Epoch {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.n_batches {
            return None;
        }
        loop {
            if let Some(batch) = self.pending.remove(&self.next) {
                self.next += 1;
                return Some(batch);
            }
            // Receiving everything that arrives (not only the batch we wait for) keeps the
            // bounded channel from filling up with later batches while an earlier one is
            // still being built.
            let Ok((b, batch)) = self.rx.as_ref()?.recv() else {
                // Workers only stop early when one panicked; never end an epoch short.
                panic!(
                    "a loader worker stopped before batch {} of {} was built",
                    self.next, self.n_batches
                );
            };
            self.pending.insert(b, batch);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n_batches - self.next;
        (left, Some(left))
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
