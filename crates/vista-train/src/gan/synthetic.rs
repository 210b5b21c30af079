//! Generated images as extra training data: a trained generator's images for every
//! class, written as an image-folder tree with `synthetic.json` (and, when a classifier
//! judged them, `consistency.json`), which `--extra-data` reads like any image folder.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use image::{GrayImage, RgbImage};
use vista_format::{Consistency, SyntheticDir, SyntheticImage, SyntheticManifest, write_json};

use crate::error::{Error, Result};

use super::sample::{TrainedGan, generate};

/// Images generated for known classes.
#[derive(Debug, Clone)]
pub struct Samples {
    /// 8-bit RGB (grey generators give equal channels), class by class.
    pub images: Vec<RgbImage>,
    /// The class each image was generated for.
    pub labels: Vec<u32>,
    /// The number of images generated for every class.
    pub per_class: usize,
    /// The seed of their noise.
    pub seed: u64,
}

impl<B: Backend> TrainedGan<B> {
    /// `per_class` images of every class, class after class; image `i`'s noise comes
    /// from `(seed, i)`. Only a class-conditional generator can be asked for a class.
    pub fn sample_classes(
        &self,
        per_class: usize,
        seed: u64,
        device: &B::Device,
    ) -> Result<Samples> {
        if !self.config.conditional {
            return Err(Error::Unconditional {
                dir: self.run.clone(),
            });
        }
        if per_class == 0 {
            return Err(Error::Invalid {
                setting: "per_class",
                why: "at least one image per class is needed".into(),
            });
        }
        let labels: Vec<u32> = (0..self.classes.len() * per_class)
            .map(|i| (i / per_class) as u32)
            .collect();
        let size = self.config.size as u32;
        let images = generate(&self.generator, &self.config, &labels, seed, device)
            .iter()
            .map(|x| to_rgb(x, size))
            .collect();
        Ok(Samples {
            images,
            labels,
            per_class,
            seed,
        })
    }
}

/// Writes `samples` of `gan` as a class-folder tree at `out` with its
/// `synthetic.json` and, when given, `consistency.json`. The tree is built under a
/// temporary name beside `out` and renamed into place, so `out` is either complete or
/// absent; an existing `out` is an error and is left alone.
pub fn write_synthetic<B: Backend>(
    out: &Path,
    gan: &TrainedGan<B>,
    samples: &Samples,
    consistency: Option<&Consistency>,
) -> Result<SyntheticManifest> {
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::OutputExists {
            path: out.to_path_buf(),
        });
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let name = out.file_name().ok_or_else(|| Error::Invalid {
        setting: "out",
        why: format!("{} names no folder", out.display()),
    })?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    let written = write_tree(&tmp, gan, samples, consistency);
    let manifest = match written {
        Ok(m) => m,
        Err(e) => {
            // Ours alone, and incomplete: nothing else would ever remove it.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    vista_format::rename_noreplace(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        Error::from(e)
    })?;
    Ok(manifest)
}

fn write_tree<B: Backend>(
    tmp: &Path,
    gan: &TrainedGan<B>,
    samples: &Samples,
    consistency: Option<&Consistency>,
) -> Result<SyntheticManifest> {
    let size = gan.config.size as u32;
    let grey = gan.config.channels == Some(1);
    let per_class = samples.per_class;
    let mut entries = Vec::with_capacity(samples.images.len());
    for (i, (img, &label)) in samples.images.iter().zip(&samples.labels).enumerate() {
        let class = gan.classes.name(label).expect("label in range").to_string();
        let dir = tmp.join(&class);
        if i % per_class == 0 {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let file = SyntheticDir::image_name(&class, i % per_class);
        let path = tmp.join(&file);
        let saved = if grey {
            GrayImage::from_fn(size, size, |x, y| image::Luma([img.get_pixel(x, y)[0]])).save(&path)
        } else {
            img.save(&path)
        };
        saved.map_err(|source| Error::Image {
            path: path.clone(),
            source,
        })?;
        entries.push(SyntheticImage { file, class });
    }
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let manifest = SyntheticManifest {
        synthetic: true,
        run: absolute(&gan.run),
        generator: absolute(&gan.weights),
        epochs: gan.epochs,
        seed: samples.seed,
        per_class,
        size: gan.config.size,
        classes: gan.classes.classes.clone(),
        images: entries,
    };
    let dir = SyntheticDir::new(tmp);
    write_json(&dir.manifest(), &manifest)?;
    if let Some(c) = consistency {
        write_json(&dir.consistency(), c)?;
    }
    Ok(manifest)
}

/// A CHW image in [0, 1] with three channels, as 8-bit RGB.
fn to_rgb(x: &[f32], size: u32) -> RgbImage {
    let plane = (size * size) as usize;
    RgbImage::from_fn(size, size, |px, py| {
        let i = (py * size + px) as usize;
        let v = |c: usize| (x[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb([v(0), v(1), v(2)])
    })
}
