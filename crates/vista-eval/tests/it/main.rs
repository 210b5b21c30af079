//! Integration tests of vista-eval: ensembling (property tests), prediction files,
//! metrics, test-time augmentation on a real model, plots and submissions.

mod ensemble;
mod metrics;
mod predictions;
mod submit;
mod tta;

use vista_eval::Predictions;

/// Predictions of `images` named `img{i}.png` over classes `a, b, c, ...`.
pub fn preds(k: usize, probs: Vec<f32>, labels: Option<Vec<u32>>) -> Predictions {
    let n = probs.len() / k;
    Predictions::from_probs(
        (0..k)
            .map(|c| ((b'a' + c as u8) as char).to_string())
            .collect(),
        (0..n).map(|i| format!("img{i}.png")).collect(),
        labels,
        probs,
    )
}
