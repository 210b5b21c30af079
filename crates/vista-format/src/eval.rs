//! `evaluation.json`: what `vista evaluate` measured, and the confusion matrix it holds.

use serde::{Deserialize, Serialize};

/// Counts of (actual, predicted) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Number of classes, the matrix's side.
    pub num_classes: usize,
    /// Row-major `[actual, predicted]`.
    pub counts: Vec<u64>,
}

impl Confusion {
    /// An empty `num_classes` x `num_classes` matrix, every count zero.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            counts: vec![0; num_classes * num_classes],
        }
    }

    /// Counts one image of class `actual` predicted as `predicted` (class indices).
    pub fn add(&mut self, actual: u32, predicted: u32) {
        self.counts[actual as usize * self.num_classes + predicted as usize] += 1;
    }

    /// The number of images of class `actual` predicted as `predicted`.
    pub fn get(&self, actual: usize, predicted: usize) -> u64 {
        self.counts[actual * self.num_classes + predicted]
    }

    /// The number of images counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The number of images predicted as their actual class (the diagonal's sum).
    pub fn correct(&self) -> u64 {
        (0..self.num_classes).map(|c| self.get(c, c)).sum()
    }

    /// Precision, recall and F1 of each class, named by `classes` (in label order), as
    /// fastai's `ClassificationInterpretation.print_classification_report` gives them.
    pub fn class_scores(&self, classes: &[String]) -> Vec<ClassScores> {
        let k = self.num_classes;
        let share = |part: f64, whole: u64| if whole > 0 { part / whole as f64 } else { 0.0 };
        (0..k)
            .map(|c| {
                let tp = self.get(c, c) as f64;
                let predicted: u64 = (0..k).map(|a| self.get(a, c)).sum();
                let support: u64 = (0..k).map(|p| self.get(c, p)).sum();
                let (precision, recall) = (share(tp, predicted), share(tp, support));
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    class: classes.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
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

/// `valid_report.json`: how the finished model of a run does on its validation set, per
/// class (fastai's `ClassificationInterpretation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidReport {
    /// Validation images.
    pub images: u64,
    /// Share predicted right.
    pub accuracy: f64,
    /// Precision, recall and F1 per class.
    pub per_class: Vec<ClassScores>,
    /// Rows: actual class, columns: predicted.
    pub confusion: Confusion,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// The class's name.
    pub class: String,
    /// Share (0..1) of the images predicted as this class that belong to it; 0 when none is.
    pub precision: f64,
    /// Share (0..1) of this class's images predicted as it; 0 when it has none.
    pub recall: f64,
    /// Harmonic mean of precision and recall, 0..1 (0 when both are 0).
    pub f1: f64,
    /// Images of this class.
    pub support: u64,
}

/// One image among the top losses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLoss {
    /// The image's file name, as the dataset's CSV or folder names it.
    pub image: String,
    /// Index of the image's actual class.
    pub actual: u32,
    /// Index of the class predicted for the image.
    pub predicted: u32,
    /// The probability of the predicted class.
    pub probability: f32,
    /// Cross-entropy of the actual class, `-ln p(actual)`.
    pub loss: f32,
}

/// Everything `vista evaluate` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Class names, in label order (the indices the other fields use).
    pub classes: Vec<String>,
    /// Labelled images evaluated.
    pub images: u64,
    /// Share (0..1) of the images predicted as their actual class.
    pub accuracy: f64,
    /// Clopper–Pearson 95% interval of the accuracy.
    pub accuracy_ci95: (f64, f64),
    /// Mean cross-entropy of the actual classes (probabilities clamped at 1e-7).
    pub log_loss: f64,
    /// Unweighted mean of the classes' F1 scores, 0..1.
    pub macro_f1: f64,
    /// Precision, recall and F1 of each class, in label order.
    pub per_class: Vec<ClassScores>,
    /// Counts of (actual, predicted) class pairs over all images.
    pub confusion: Confusion,
    /// `(actual, predicted, count)`, most frequent first.
    pub most_confused: Vec<(String, String, u64)>,
    /// The images with the highest loss, highest first.
    pub top_losses: Vec<TopLoss>,
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
