//! Batches: normalized NCHW image data with labels, and their conversion to burn tensors.

#[cfg(feature = "tensor")]
use burn::tensor::backend::Backend;
#[cfg(feature = "tensor")]
use burn::tensor::{Int, Tensor, TensorData};
use vista_format::Normalize;

use crate::mixup::Mix;

/// The per-channel mean and standard deviation of a set of images (every pixel of
/// every image counts once), as a normalization that centres them.
pub fn normalize_from_images<I: std::borrow::Borrow<image::RgbImage>>(
    images: impl IntoIterator<Item = I>,
) -> Normalize {
    let mut sum = [0f64; 3];
    let mut sq = [0f64; 3];
    let mut count = 0f64;
    for img in images {
        let img = img.borrow();
        for px in img.pixels() {
            for c in 0..3 {
                let v = f64::from(px.0[c]) / 255.0;
                sum[c] += v;
                sq[c] += v * v;
            }
        }
        count += f64::from(img.width()) * f64::from(img.height());
    }
    let mut out = Normalize::IDENTITY;
    if count > 0.0 {
        for c in 0..3 {
            let mean = sum[c] / count;
            let var = (sq[c] / count - mean * mean).max(0.0);
            out.mean[c] = mean as f32;
            out.std[c] = (var.sqrt() as f32).max(1e-3);
        }
    }
    out
}

/// A batch on the CPU: `images` is `[len, 3, size, size]` row-major, already normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The image values, `len * 3 * size * size` of them, normalized per channel.
    pub images: Vec<f32>,
    /// The class id of each image (for a mixed batch, of the image's own sample).
    pub labels: Vec<u32>,
    /// Set when the batch was mixed (see [`crate::mixup`]).
    pub mix: Option<Mix>,
    /// The side of each square image, in pixels.
    pub size: usize,
    /// Positions of these samples in the loader's item list (to match predictions to files).
    pub indices: Vec<usize>,
}

impl Batch {
    /// The number of images in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images as a `[batch, 3, size, size]` float tensor.
    #[cfg(feature = "tensor")]
    pub fn images_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        let shape = [self.len(), 3, self.size, self.size];
        Tensor::from_data(TensorData::new(self.images.clone(), shape), device)
    }

    /// The labels as a `[batch]` integer tensor.
    #[cfg(feature = "tensor")]
    pub fn labels_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 1, Int> {
        labels_tensor(&self.labels, device)
    }
}

/// Class ids as a `[n]` integer tensor.
#[cfg(feature = "tensor")]
pub fn labels_tensor<B: Backend>(labels: &[u32], device: &B::Device) -> Tensor<B, 1, Int> {
    let data: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    Tensor::from_data(TensorData::new(data, [labels.len()]), device)
}
