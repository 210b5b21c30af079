//! What a run measures: one row per epoch (printed as a table, written as CSV and JSON)
//! and one record per optimizer step (for the loss and learning-rate curves).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil::write_atomic;
use crate::layout::RunDir;

/// `best.json`: the epoch whose model a run keeps as `best.safetensors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// The epoch, counted from 1 over the whole run.
    pub epoch: usize,
    /// What it was judged by: `valid_loss` or `accuracy`.
    pub monitor: String,
    /// Its validation loss.
    pub valid_loss: f32,
    /// Its validation accuracy.
    pub accuracy: f32,
}

/// One epoch of a run, a row of `metrics.csv` and `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The training phase the epoch belongs to, e.g. `frozen` or `28px`.
    pub phase: String,
    /// 1-based, counted over the whole run.
    pub epoch: usize,
    /// Side of the images the epoch trained on, in pixels.
    pub size: u32,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's images.
    pub train_loss: f32,
    /// Mean cross-entropy on the validation images after the epoch.
    pub valid_loss: f32,
    /// Share (0..1) of the validation images predicted as their class.
    pub accuracy: f32,
    /// `1 - accuracy`, the share of validation images predicted wrongly.
    pub error_rate: f32,
    /// Training images per second (forward, backward and optimizer step, loading included).
    pub images_per_sec: f32,
    /// Seconds of the epoch, validation included.
    pub wall_s: f32,
}

/// One optimizer step of a run, a row of `losses.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 0-based index of the step, counted over the whole run.
    pub step: usize,
    /// 1-based epoch the step belongs to.
    pub epoch: usize,
    /// Learning rate the step trained at.
    pub lr: f64,
    /// Training loss of the step's batch, not smoothed.
    pub loss: f32,
}

const COLUMNS: [&str; 10] = [
    "phase",
    "epoch",
    "size",
    "lr",
    "train_loss",
    "valid_loss",
    "accuracy",
    "error_rate",
    "images_per_sec",
    "wall_s",
];

impl EpochMetrics {
    /// Column names of [`Self::table_row`].
    pub fn table_header() -> String {
        format!(
            "{:<10} {:>5} {:>4} {:>9} {:>10} {:>10} {:>8} {:>10} {:>8} {:>7}",
            "phase",
            "epoch",
            "size",
            "lr",
            "train_loss",
            "valid_loss",
            "accuracy",
            "error_rate",
            "img/s",
            "time"
        )
    }

    /// This epoch as one line of the training table, fastai-style.
    pub fn table_row(&self) -> String {
        format!(
            "{:<10} {:>5} {:>4} {:>9.2e} {:>10.4} {:>10.4} {:>8.4} {:>10.4} {:>8.1} {:>7}",
            self.phase,
            self.epoch,
            self.size,
            self.lr,
            self.train_loss,
            self.valid_loss,
            self.accuracy,
            self.error_rate,
            self.images_per_sec,
            format_secs(self.wall_s),
        )
    }

    fn csv_row(&self) -> String {
        format!(
            "{},{},{},{:e},{},{},{},{},{},{}",
            self.phase,
            self.epoch,
            self.size,
            self.lr,
            self.train_loss,
            self.valid_loss,
            self.accuracy,
            self.error_rate,
            self.images_per_sec,
            self.wall_s
        )
    }
}

/// `lr_find.json`: the LR finder's sweep and fastai's suggestions from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFindRecord {
    /// The learning rate of each step of the sweep, rising exponentially.
    pub lrs: Vec<f64>,
    /// The smoothed loss at each rate.
    pub losses: Vec<f64>,
    /// fastai's suggested rates from the curve.
    pub suggestions: Suggestions,
}

impl LrFindRecord {
    /// The rate the recipe trains at: fastai's `slide`, else its `valley`.
    pub fn pick(&self) -> Option<f64> {
        self.suggestions.slide.or(self.suggestions.valley)
    }
}

/// The learning rates fastai's `lr_find` proposes (`None` where the curve is too short).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Suggestions {
    /// fastai's default: a point in the longest valley of the loss.
    pub valley: Option<f64>,
    /// Where the loss falls fastest.
    pub steep: Option<f64>,
    /// The rate of the lowest loss, divided by 10.
    pub minimum: Option<f64>,
    /// Where the loss stops falling ahead of a slide (fastai's `slide`).
    pub slide: Option<f64>,
}

/// `m:ss`, as fastai's table shows time.
pub fn format_secs(s: f32) -> String {
    let s = s.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Writes `metrics.csv` and `metrics.json` into the run folder `dir`, atomically.
pub fn write_metrics(dir: &Path, epochs: &[EpochMetrics]) -> Result<()> {
    let run = RunDir::new(dir);
    let mut csv = COLUMNS.join(",");
    csv.push('\n');
    for m in epochs {
        let _ = writeln!(csv, "{}", m.csv_row());
    }
    write_atomic(&run.metrics_csv(), csv.as_bytes())?;
    crate::json::write_json(&run.metrics_json(), epochs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_one_row_per_epoch_under_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let m = EpochMetrics {
            phase: "64px".into(),
            epoch: 1,
            size: 64,
            lr: 1e-3,
            train_loss: 0.5,
            valid_loss: 0.4,
            accuracy: 0.9,
            error_rate: 0.1,
            images_per_sec: 100.0,
            wall_s: 61.0,
        };
        write_metrics(dir.path(), &[m.clone(), m.clone()]).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("phase,epoch,size,lr"));
        assert!(lines[1].starts_with("64px,1,64,1e-3,0.5,0.4,0.9"));
        let back: Vec<EpochMetrics> =
            serde_json::from_slice(&std::fs::read(dir.path().join("metrics.json")).unwrap())
                .unwrap();
        assert_eq!(back, vec![m.clone(), m.clone()]);
        assert_eq!(format_secs(61.0), "1:01");
        assert!(m.table_row().contains("0.9000"));
    }
}
