//! Input normalization: the per-channel statistics a model's inputs are centred with,
//! saved in every run's configuration.

use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation, applied as `(x - mean) / std` to [0, 1] pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Mean of each channel (R, G, B), in [0, 1] pixel units.
    pub mean: [f32; 3],
    /// Standard deviation of each channel (R, G, B), in [0, 1] pixel units.
    pub std: [f32; 3],
}

impl Normalize {
    /// The ImageNet statistics torchvision's pretrained models expect.
    pub const IMAGENET: Normalize = Normalize {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Leaves pixels in [0, 1].
    pub const IDENTITY: Normalize = Normalize {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Normalizes `n` CHW images of side `size` in place.
    pub fn apply(&self, data: &mut [f32], size: usize) {
        let plane = size * size;
        for (i, chunk) in data.chunks_exact_mut(plane).enumerate() {
            let c = i % 3;
            let (m, s) = (self.mean[c], self.std[c]);
            for v in chunk {
                *v = (*v - m) / s;
            }
        }
    }
}
