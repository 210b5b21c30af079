//! Scores of predictions against labels: accuracy with its 95% interval, per-class
//! precision, recall and F1, the confusion matrix, the most-confused pairs, and the
//! images with the highest loss.
//!
//! Everything is computed from the prediction rows in one pass; top losses keep only the
//! `k` worst rows, so no image is held in memory (fastai's `ClassificationInterpretation`
//! keeps every input, fastai issue #3141).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};

use crate::error::{Error, Result};
use crate::predictions::Predictions;

/// Counts of (actual, predicted) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub num_classes: usize,
    /// Row-major `[actual, predicted]`.
    pub counts: Vec<u64>,
}

impl Confusion {
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            counts: vec![0; num_classes * num_classes],
        }
    }

    pub fn add(&mut self, actual: u32, predicted: u32) {
        self.counts[actual as usize * self.num_classes + predicted as usize] += 1;
    }

    pub fn get(&self, actual: usize, predicted: usize) -> u64 {
        self.counts[actual * self.num_classes + predicted]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn correct(&self) -> u64 {
        (0..self.num_classes).map(|c| self.get(c, c)).sum()
    }

    /// Off-diagonal pairs with at least `min` images, most frequent first (fastai's
    /// `most_confused(min_val)`); ties in class order.
    pub fn most_confused(&self, min: u64) -> Vec<(usize, usize, u64)> {
        let k = self.num_classes;
        let mut pairs: Vec<_> = (0..k)
            .flat_map(|a| (0..k).map(move |p| (a, p)))
            .filter(|(a, p)| a != p)
            .map(|(a, p)| (a, p, self.get(a, p)))
            .filter(|&(_, _, c)| c >= min.max(1))
            .collect();
        pairs.sort_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
        pairs
    }

    /// The matrix as aligned text, actual classes down, predicted across.
    pub fn to_text(&self, classes: &[String]) -> String {
        let width = classes
            .iter()
            .map(String::len)
            .chain(self.counts.iter().map(|c| c.to_string().len()))
            .max()
            .unwrap_or(1);
        let corner = "actual \\ predicted";
        let first = classes
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(corner.len());
        let mut s = format!("{corner:>first$}");
        for c in classes {
            s.push_str(&format!(" {c:>width$}"));
        }
        s.push('\n');
        for (a, name) in classes.iter().enumerate() {
            s.push_str(&format!("{name:>first$}"));
            for p in 0..self.num_classes {
                s.push_str(&format!(" {:>width$}", self.get(a, p)));
            }
            s.push('\n');
        }
        s
    }
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Images of this class.
    pub support: u64,
}

/// One image among the top losses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLoss {
    pub image: String,
    pub actual: u32,
    pub predicted: u32,
    /// The probability of the predicted class.
    pub probability: f32,
    /// Cross-entropy of the actual class, `-ln p(actual)`.
    pub loss: f32,
}

/// Everything `vista evaluate` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub classes: Vec<String>,
    pub images: u64,
    pub accuracy: f64,
    /// Clopper–Pearson 95% interval of the accuracy.
    pub accuracy_ci95: (f64, f64),
    /// Mean cross-entropy of the actual classes (probabilities clamped at 1e-7).
    pub log_loss: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassScores>,
    pub confusion: Confusion,
    /// `(actual, predicted, count)`, most frequent first.
    pub most_confused: Vec<(String, String, u64)>,
    pub top_losses: Vec<TopLoss>,
}

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
    let per_class: Vec<ClassScores> = (0..k)
        .map(|c| {
            let tp = confusion.get(c, c) as f64;
            let predicted: u64 = (0..k).map(|a| confusion.get(a, c)).sum();
            let support: u64 = (0..k).map(|p| confusion.get(c, p)).sum();
            let precision = if predicted > 0 {
                tp / predicted as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassScores {
                class: preds.classes[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
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

impl Evaluation {
    /// A plain-text summary: accuracy, per-class table, confusion matrix, most confused.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "accuracy {:.4} (95% CI {:.4}–{:.4}) on {} images; log loss {:.4}; macro F1 {:.4}\n\n",
            self.accuracy,
            self.accuracy_ci95.0,
            self.accuracy_ci95.1,
            self.images,
            self.log_loss,
            self.macro_f1
        );
        let w = self
            .classes
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(5);
        s.push_str(&format!(
            "{:>w$} {:>9} {:>9} {:>9} {:>8}\n",
            "class", "precision", "recall", "f1", "support"
        ));
        for c in &self.per_class {
            s.push_str(&format!(
                "{:>w$} {:>9.4} {:>9.4} {:>9.4} {:>8}\n",
                c.class, c.precision, c.recall, c.f1, c.support
            ));
        }
        s.push('\n');
        s.push_str(&self.confusion.to_text(&self.classes));
        s.push_str("\nmost confused (actual -> predicted: images):\n");
        for (a, p, c) in self.most_confused.iter().take(10) {
            s.push_str(&format!("  {a} -> {p}: {c}\n"));
        }
        s
    }
}
