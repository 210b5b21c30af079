//! A trained generator: loading it from a GAN run (`load_gan`) and sampling it with
//! noise seeded per image (`generate`).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use vista_data::{ClassMap, ImageSource, derive_seed, labels_tensor};
use vista_format::{CheckpointDir, GanDir, GeneratorInfo};
use vista_models::Generator;

use crate::error::{Error, Result};
use crate::record::load_checked;
use crate::run::{read_json, recorder};

use super::GENERATOR;

use super::config::GanConfig;
use super::trainer::GanState;

/// A trained generator, loaded for sampling.
#[derive(Debug)]
pub struct TrainedGan<B: Backend> {
    /// The GAN's run folder.
    pub run: PathBuf,
    /// The settings the GAN was trained with, as saved in its `gan.json`.
    pub config: GanConfig,
    /// The classes of the images it was trained on.
    pub classes: ClassMap,
    /// The generator network, with its trained weights.
    pub generator: Generator<B>,
    /// The file the generator came from.
    pub weights: PathBuf,
    /// The number of epochs the generator was trained for.
    pub epochs: usize,
}

/// True when every pixel of every image has equal red, green and blue.
pub fn all_grey(images: &(impl ImageSource + ?Sized)) -> bool {
    (0..images.count()).all(|i| (images.image(i).pixels()).all(|p| p[0] == p[1] && p[1] == p[2]))
}

/// Standard normal noise, `n * dim` values, from `seed`.
pub(super) fn normal_noise(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// The generator's images for `labels`, CHW in [0, 1] with three channels (grey ones
/// repeated), in `labels`' order. Image `i`'s noise comes from `(seed, i)` alone, so
/// the result does not depend on how the work is chunked.
pub fn generate<B: Backend>(
    generator: &Generator<B>,
    cfg: &GanConfig,
    labels: &[u32],
    seed: u64,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let (c, s) = (cfg.channels(), cfg.size);
    let plane = s * s;
    let mut out = Vec::with_capacity(labels.len());
    for (chunk_i, chunk) in labels.chunks(256).enumerate() {
        let noise: Vec<f32> = (0..chunk.len())
            .flat_map(|j| {
                normal_noise(
                    derive_seed(seed, &[(chunk_i * 256 + j) as u64]),
                    1,
                    cfg.noise,
                )
            })
            .collect();
        let z = Tensor::<B, 2>::from_data(TensorData::new(noise, [chunk.len(), cfg.noise]), device);
        let y = cfg.conditional.then(|| labels_tensor::<B>(chunk, device));
        let x: Vec<f32> = generator
            .forward(z, y)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("images are f32");
        for img in x.chunks_exact(c * plane) {
            let mut rgb = Vec::with_capacity(3 * plane);
            for ch in 0..3 {
                let src = &img[(ch % c) * plane..(ch % c + 1) * plane];
                rgb.extend(src.iter().map(|v| (v + 1.0) / 2.0));
            }
            out.push(rgb);
        }
    }
    out
}

/// Loads a GAN run's generator: the final `generator.bin`, or with `checkpoint` the
/// generator of that checkpoint folder.
pub fn load_gan<B: Backend>(
    dir: &Path,
    checkpoint: Option<&Path>,
    device: &B::Device,
) -> Result<TrainedGan<B>> {
    let config: GanConfig = read_json(&GanDir::new(dir).config())?;
    let classes = ClassMap::load(&GanDir::new(dir).classes())?;
    let file = match checkpoint {
        Some(ckpt) => CheckpointDir::new(ckpt).stem(GENERATOR),
        None => GanDir::new(dir).generator_stem(),
    };
    let weights = file.with_extension("bin");
    if !weights.exists() {
        return Err(Error::NoGenerator {
            dir: dir.to_path_buf(),
            weights,
        });
    }
    let epochs = match checkpoint {
        Some(ckpt) => read_json::<GanState>(&CheckpointDir::new(ckpt).state())?
            .epochs
            .len(),
        None => read_json::<GeneratorInfo>(&GanDir::new(dir).generator_info())?.epochs,
    };
    let generator = config.generator(classes.len()).init::<B>(device)?;
    let generator = load_checked(&weights, || {
        generator
            .load_file(file, &recorder(), device)
            .map_err(|e| Error::record(&weights, e))
    })?;
    Ok(TrainedGan {
        run: dir.to_path_buf(),
        config,
        classes,
        generator,
        weights,
        epochs,
    })
}
