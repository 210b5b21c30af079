//! Ensembling saved predictions: the article's majority vote with a seeded random
//! tie-break, the mean of probabilities, and a weighted mean.
//!
//! Inputs are prediction files, so models trained separately (other machines, other
//! architectures) combine, as long as they cover the same images and classes.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use vista_format::Stream;

use crate::error::{Error, Result};
use crate::predictions::Predictions;

/// How predictions are combined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Each model votes for its predicted class; the most votes win and ties are broken
    /// uniformly at random among the tied classes (seeded per image).
    Vote,
    /// The mean of the probabilities.
    Mean,
    /// The weighted mean of the probabilities, one weight per model.
    Weighted(Vec<f32>),
}

/// The majority vote of one image: `votes` holds each model's predicted class. Ties are
/// broken by a draw seeded with `(seed, image)`, so the winner depends on neither the
/// order of the models nor on other images.
pub fn vote(votes: &[u32], num_classes: usize, seed: u64, image: u64) -> u32 {
    let mut counts = vec![0usize; num_classes];
    for &v in votes {
        counts[v as usize] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    let tied: Vec<u32> = (0..num_classes as u32)
        .filter(|&c| counts[c as usize] == most)
        .collect();
    if tied.len() == 1 {
        return tied[0];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(Stream::Tie.seed(seed, &[image]));
    tied[rng.random_range(0..tied.len())]
}

/// Combines predictions of the same images. With [`Method::Vote`], each row's
/// "probabilities" are the share of votes each class got.
pub fn ensemble(
    members: &[(PathBuf, Predictions)],
    method: &Method,
    seed: u64,
) -> Result<Predictions> {
    let Some((first_path, first)) = members.first() else {
        return Err(Error::Invalid(
            "an ensemble needs at least one prediction file".into(),
        ));
    };
    for (path, p) in &members[1..] {
        let mismatch = |message: String| Error::Mismatch {
            path: path.clone(),
            first: first_path.clone(),
            message,
        };
        if p.classes != first.classes {
            return Err(mismatch(format!(
                "classes {:?} against {:?}",
                p.classes, first.classes
            )));
        }
        if p.images != first.images {
            let at = p
                .images
                .iter()
                .zip(&first.images)
                .position(|(a, b)| a != b)
                .unwrap_or(p.len().min(first.len()));
            return Err(mismatch(format!(
                "{} images against {}; they first differ at row {} (`{}` against `{}`)",
                p.len(),
                first.len(),
                at + 2,
                p.images.get(at).map_or("", String::as_str),
                first.images.get(at).map_or("", String::as_str),
            )));
        }
    }
    let (n, k) = (first.len(), first.num_classes());
    let labels = members.iter().find_map(|(_, p)| p.labels.clone());
    let weights: Vec<f32> = match method {
        Method::Weighted(w) if w.len() != members.len() => {
            return Err(Error::Invalid(format!(
                "{} weights for {} prediction files",
                w.len(),
                members.len()
            )));
        }
        Method::Weighted(w)
            if w.iter().any(|x| !x.is_finite() || *x < 0.0) || w.iter().sum::<f32>() <= 0.0 =>
        {
            return Err(Error::Invalid(format!(
                "weights {w:?} must be non-negative with a positive sum"
            )));
        }
        Method::Weighted(w) => w.clone(),
        _ => vec![1.0; members.len()],
    };
    let total: f32 = weights.iter().sum();
    match method {
        Method::Vote => {
            let mut probs = vec![0.0f32; n * k];
            let mut predicted = Vec::with_capacity(n);
            let mut votes = Vec::with_capacity(members.len());
            for i in 0..n {
                votes.clear();
                votes.extend(members.iter().map(|(_, p)| p.predicted[i]));
                for &v in &votes {
                    probs[i * k + v as usize] += 1.0 / members.len() as f32;
                }
                predicted.push(vote(&votes, k, seed, i as u64));
            }
            Ok(Predictions {
                classes: first.classes.clone(),
                images: first.images.clone(),
                labels,
                predicted,
                probs,
            })
        }
        Method::Mean | Method::Weighted(_) => {
            let mut probs = vec![0.0f32; n * k];
            for ((_, p), w) in members.iter().zip(&weights) {
                for (acc, v) in probs.iter_mut().zip(&p.probs) {
                    *acc += v * w / total;
                }
            }
            Ok(Predictions::from_probs(
                first.classes.clone(),
                first.images.clone(),
                labels,
                probs,
            ))
        }
    }
}
