//! Decoding a whole dataset once, in parallel, into a cache of RGB images.
//!
//! The cache takes 3 bytes a pixel: Intel's 25K 150x150 photos take 1.7 GB,
//! Fashion-MNIST's 70K 28x28 images 165 MB. `max_side` bounds it: images whose shorter
//! side is longer are downscaled once (Lanczos) when cached, so later epochs neither
//! decode JPEGs again nor resample more pixels than the largest training size needs.
//! `cache_budget` bounds the memory it takes: images past it go to an unnamed spill file
//! (see [`Images`]), so memory does not grow with the dataset.
//!
//! While decoding, each thread also holds one file's bytes, at most
//! [`MAX_IMAGE_FILE_BYTES`](crate::MAX_IMAGE_FILE_BYTES) (larger files are reported, not
//! read), and the image being decoded, at most `max_pixels` pixels.

use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;

use crate::images::{ImageStore, Images, Stored, default_cache_budget};

use crate::classes::ClassMap;
use crate::decode::{DEFAULT_MAX_PIXELS, decode_rgb};
use crate::error::{Error, Result};
use crate::problem::{OnBadImage, Problem, ProblemReport};
use crate::source::{Dataset, open};

/// How a dataset is decoded and what happens to bad files.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Decompression-bomb guard: images with more pixels are rejected before decoding.
    pub max_pixels: u64,
    /// Downscale cached images so their shorter side is at most this many pixels.
    pub max_side: Option<u32>,
    /// Bytes of decoded pixels kept in memory; the images past it are kept in an unnamed
    /// file in `spill_dir` and read back when used. An eighth of the machine's memory by
    /// default ([`default_cache_budget`](crate::default_cache_budget)).
    pub cache_budget: u64,
    /// The folder of the spill file (the system's temporary folder when `None`; a run
    /// passes its own folder, as `/tmp` may be held in memory).
    pub spill_dir: Option<PathBuf>,
    /// Keep the decoded pixels (the default). Without them every file is still decoded,
    /// checked and measured, and dropped at once, so checking a dataset of any size
    /// takes the memory of one image per thread; the returned images are then empty.
    pub keep_images: bool,
    /// What to do when a file is bad: fail with the full report, or leave it out.
    pub on_bad_image: OnBadImage,
    /// Also decode (and so check) the unlabelled images.
    pub include_unlabelled: bool,
    /// Hears of the decoding's progress ([`vista_format::Quiet`] by default).
    pub observer: vista_format::Observers,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_side: None,
            cache_budget: default_cache_budget(),
            spill_dir: None,
            keep_images: true,
            on_bad_image: OnBadImage::Error,
            include_unlabelled: false,
            observer: vista_format::Observers::default(),
        }
    }
}

/// A dataset with every image decoded; bad files are left out and listed in `report`.
#[derive(Debug)]
pub struct Loaded {
    /// The dataset without the files named in `report`; image vectors below align with it.
    pub dataset: Dataset,
    /// The decoded training images, in the order of `dataset.train`.
    pub train: Images,
    /// The decoded validation images, in the order of `dataset.valid`.
    pub valid: Images,
    /// The decoded test images, in the order of `dataset.test`.
    pub test: Images,
    /// The decoded unlabelled images, in the order of `dataset.unlabelled`; empty unless
    /// [`LoadOptions::include_unlabelled`] was set.
    pub unlabelled: Images,
    /// Width and height of each training image as stored on disk, before `max_side`.
    pub original_sizes: Vec<(u32, u32)>,
    /// Every problem found, structural and inside files.
    pub report: ProblemReport,
}

impl Loaded {
    /// Bytes of decoded pixels held in memory.
    pub fn cache_bytes(&self) -> u64 {
        [&self.train, &self.valid, &self.test, &self.unlabelled]
            .iter()
            .map(|v| v.memory_bytes())
            .sum()
    }

    /// Bytes of decoded pixels kept in the spill file, past the memory budget.
    pub fn spilled_bytes(&self) -> u64 {
        [&self.train, &self.valid, &self.test, &self.unlabelled]
            .iter()
            .map(|v| v.spilled_bytes())
            .sum()
    }
}

/// Opens `path`, decodes every image in parallel and applies the bad-image policy.
///
/// With [`OnBadImage::Error`] any problem fails the call after *all* files were checked,
/// and the error carries the full report.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded> {
    let dataset = open(path)?;
    let mut problems = dataset.problems.clone();
    let paths: Vec<PathBuf> = dataset
        .train
        .iter()
        .chain(&dataset.valid)
        .chain(&dataset.test)
        .map(|s| s.path.clone())
        .chain(if opts.include_unlabelled {
            dataset.unlabelled.clone()
        } else {
            Vec::new()
        })
        .collect();
    let decoded = decode_many(&paths, opts)?;
    let mut sizes = Vec::new();
    let mut images = Vec::new();
    for (path, result) in paths.iter().zip(decoded) {
        match result {
            Ok((image, size)) => {
                images.push(Some(image));
                sizes.push(size);
            }
            Err(kind) => {
                problems.push(Problem {
                    path: path.clone(),
                    kind,
                });
                images.push(None);
                sizes.push((0, 0));
            }
        }
    }
    let report = ProblemReport::new(problems).enforce(opts.on_bad_image)?;

    let n_train = dataset.train.len();
    let n_valid = dataset.valid.len();
    let n_test = dataset.test.len();
    let mut images = images.into_iter();
    let mut sizes = sizes.into_iter();
    let train_all: Vec<_> = images.by_ref().take(n_train).collect();
    let original_sizes: Vec<_> = sizes
        .by_ref()
        .take(n_train)
        .zip(&train_all)
        .filter(|(_, i)| i.is_some())
        .map(|(s, _)| s)
        .collect();
    let valid_all: Vec<_> = images.by_ref().take(n_valid).collect();
    let test_all: Vec<_> = images.by_ref().take(n_test).collect();
    let unlabelled_all: Vec<_> = images.collect();
    let dataset = dataset.without(&report);
    Ok(Loaded {
        dataset,
        train: train_all.into_iter().flatten().collect(),
        valid: valid_all.into_iter().flatten().collect(),
        test: test_all.into_iter().flatten().collect(),
        unlabelled: unlabelled_all.into_iter().flatten().collect(),
        original_sizes,
        report,
    })
}

type Decoded = std::result::Result<(Stored, (u32, u32)), crate::problem::ProblemKind>;

/// Decodes `paths` in parallel into the memory budget and the spill file; only a failure
/// to spill (a full disk) is an error, a bad file is a problem of its own.
fn decode_many(paths: &[PathBuf], opts: &LoadOptions) -> Result<Vec<Decoded>> {
    let task = opts.observer.task("decoding", paths.len() as u64);
    let spill_dir = (opts.spill_dir.clone()).unwrap_or_else(std::env::temp_dir);
    let store = ImageStore::new(opts.cache_budget, &spill_dir);
    let out = paths
        .par_iter()
        .map(|path| {
            let result = match decode_rgb(path, opts.max_pixels) {
                Ok(img) => {
                    let size = img.dimensions();
                    let kept = if opts.keep_images {
                        bound_side(img, opts.max_side)
                    } else {
                        RgbImage::new(0, 0)
                    };
                    Ok((store.put(kept)?, size))
                }
                Err(kind) => Err(kind),
            };
            task.step(1);
            Ok(result)
        })
        .collect();
    drop(task);
    out
}

/// The size of a `width` x `height` image once [`bound_side`] has bounded it.
pub fn bounded_size(width: u32, height: u32, max_side: Option<u32>) -> (u32, u32) {
    let short = width.min(height);
    match max_side {
        Some(max_side) if short > max_side => {
            let scale = f64::from(max_side) / f64::from(short);
            (
                ((f64::from(width) * scale).round() as u32).max(1),
                ((f64::from(height) * scale).round() as u32).max(1),
            )
        }
        _ => (width, height),
    }
}

/// Downscales `img` so its shorter side is at most `max_side`, keeping the aspect ratio.
pub fn bound_side(img: RgbImage, max_side: Option<u32>) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = bounded_size(w, h, max_side);
    if (nw, nh) == (w, h) {
        return img;
    }
    // fast_image_resize's SIMD Lanczos straight from the photo beats `image`'s
    // box-filtered thumbnail followed by its Lanczos (`cargo xtask bench data`).
    crate::resize::resize_rgb(&img, nw, nh, crate::resize::Filter::Lanczos3)
}

/// Loads extra training images (`--extra-data`: an image-folder tree, such as a GAN's
/// samples) for a dataset of `classes`: its class folders must carry the dataset's class
/// names. Returns the images and their class ids in `classes`, and the load's report.
pub fn load_extra(
    dir: &Path,
    classes: &ClassMap,
    opts: &LoadOptions,
) -> Result<(Images, Vec<u32>, ProblemReport)> {
    let loaded = load(dir, opts)?;
    let mut labels = Vec::with_capacity(loaded.train.len());
    for s in &loaded.dataset.train {
        let name = loaded
            .dataset
            .classes
            .name(s.label)
            .expect("label in range");
        let id = classes.id(name).ok_or_else(|| Error::ForeignClass {
            path: dir.to_path_buf(),
            class: name.to_string(),
            known: classes.classes.clone(),
        })?;
        labels.push(id);
    }
    Ok((loaded.train, labels, loaded.report))
}
