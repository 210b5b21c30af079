//! Scores of predictions against labels: accuracy with its 95% interval, per-class
//! precision, recall and F1, the confusion matrix, the most-confused pairs, and the
//! images with the highest loss.
//!
//! Everything is computed from the prediction rows in one pass; top losses keep only the
//! `k` worst rows, so no image is held in memory (fastai's `ClassificationInterpretation`
//! keeps every input, fastai issue #3141).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use statrs::distribution::{Beta, ContinuousCDF};

pub use vista_format::{ClassScores, Confusion, Evaluation, TopLoss};

use crate::error::{Error, Result};
use crate::predictions::Predictions;

/// The exact (Clopper–Pearson) two-sided 95% interval of `k` successes in `n` trials.
pub fn accuracy_interval(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let lo = if k == 0.0 {
        0.0
    } else {
        Beta::new(k, n - k + 1.0).map_or(0.0, |b| b.inverse_cdf(0.025))
    };
    let hi = if k == n {
        1.0
    } else {
        Beta::new(k + 1.0, n - k).map_or(1.0, |b| b.inverse_cdf(0.975))
    };
    (lo, hi)
}

/// A min-heap entry ordered by loss, so the heap's top is the smallest kept loss.
#[derive(Debug, PartialEq)]
struct ByLoss(f32, usize);

impl Eq for ByLoss {}

impl PartialOrd for ByLoss {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByLoss {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap. Equal losses keep the earlier row.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// Scores `preds` against their labels; `top` is how many top losses to keep.
pub fn evaluate(preds: &Predictions, top: usize) -> Result<Evaluation> {
    let labels = preds.labels.as_ref().ok_or_else(|| {
        Error::Invalid(
            "the predictions carry no labels: give the labels (a CSV or a labelled test set)"
                .into(),
        )
    })?;
    let k = preds.num_classes();
    let mut confusion = Confusion::new(k);
    let mut log_loss = 0.0f64;
    let mut heap = BinaryHeap::with_capacity(top + 1);
    for (i, (&actual, &predicted)) in labels.iter().zip(&preds.predicted).enumerate() {
        confusion.add(actual, predicted);
        let loss = -preds.row(i)[actual as usize].max(1e-7).ln();
        log_loss += f64::from(loss);
        if top > 0 {
            heap.push(ByLoss(loss, i));
            if heap.len() > top {
                heap.pop();
            }
        }
    }
    let n = confusion.total();
    let per_class = confusion.class_scores(&preds.classes);
    let mut top_losses: Vec<TopLoss> = heap
        .into_vec()
        .into_iter()
        .map(|ByLoss(loss, i)| TopLoss {
            image: preds.images[i].clone(),
            actual: labels[i],
            predicted: preds.predicted[i],
            probability: preds.row(i)[preds.predicted[i] as usize],
            loss,
        })
        .collect();
    top_losses.sort_by(|a, b| b.loss.total_cmp(&a.loss));
    let name = |c: usize| preds.classes[c].clone();
    Ok(Evaluation {
        classes: preds.classes.clone(),
        images: n,
        accuracy: confusion.correct() as f64 / n.max(1) as f64,
        accuracy_ci95: accuracy_interval(confusion.correct(), n),
        log_loss: log_loss / n.max(1) as f64,
        macro_f1: per_class.iter().map(|c| c.f1).sum::<f64>() / k.max(1) as f64,
        per_class,
        most_confused: confusion
            .most_confused(1)
            .into_iter()
            .map(|(a, p, c)| (name(a), name(p), c))
            .collect(),
        confusion,
        top_losses,
    })
}
