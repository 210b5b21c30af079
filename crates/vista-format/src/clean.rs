//! The cleaning stage's files: the flags manifest (`flags.json` for tools, `flags.csv`
//! for people), the article's rules that made it, and the noisy-label detection score.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::classes::check_class_list;
use crate::error::Result;
use crate::json::{read_json, write_json};
use crate::layout::CleanDir;

/// Thresholds of the two rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// A wrong prediction above this probability is "likely mislabelled".
    pub mislabelled_above: f32,
    /// A top probability within `[lo, hi]` is "ambiguous".
    pub ambiguous: (f32, f32),
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            mislabelled_above: 0.9,
            ambiguous: (0.5, 0.6),
        }
    }
}

/// Why an image was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Predicted as another class than its given one, with a probability above
    /// [`Rules::mislabelled_above`].
    LikelyMislabelled,
    /// Its top probability lies within [`Rules::ambiguous`].
    Ambiguous,
    /// Among the highest losses of its given class (for review without rules).
    TopLoss,
}

impl Reason {
    /// The reason as files and the command line spell it, e.g. `likely_mislabelled`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::LikelyMislabelled => "likely_mislabelled",
            Reason::Ambiguous => "ambiguous",
            Reason::TopLoss => "top_loss",
        }
    }

    /// The reason spelt `name` as [`Reason::name`] gives it (or `mislabelled` for short);
    /// `None` for any other name.
    pub fn parse(name: &str) -> Option<Reason> {
        match name {
            "likely_mislabelled" | "mislabelled" => Some(Reason::LikelyMislabelled),
            "ambiguous" => Some(Reason::Ambiguous),
            "top_loss" => Some(Reason::TopLoss),
            _ => None,
        }
    }
}

/// One flagged image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Path relative to the dataset's root.
    pub image: String,
    /// The class the dataset gives the image.
    pub given: String,
    /// The class the model predicted for the image.
    pub predicted: String,
    /// Probability of the predicted class.
    pub probability: f32,
    /// Why the image was flagged.
    pub reason: Reason,
}

/// How well the flags find the flipped images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Images whose labels were deliberately flipped.
    pub flipped: usize,
    /// Images flagged (for the reason the score counts).
    pub flagged: usize,
    /// Flagged images that were flipped.
    pub hits: usize,
    /// Share (0..1) of the flagged images that were flipped; 0 when none is flagged.
    pub precision: f64,
    /// Share (0..1) of the flipped images that were flagged; 0 when none is flipped.
    pub recall: f64,
}

/// `detection.json`: detection scores keyed by the flags they count (`all`,
/// `likely_mislabelled`, ...).
pub type DetectionReport = BTreeMap<String, Detection>;

/// Flagged images of one dataset and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The dataset's root (flags' paths are relative to it).
    pub dataset: PathBuf,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// The thresholds the flags were made with.
    pub rules: Rules,
    /// Where the predictions came from, e.g. "out-of-fold, 5 folds, seed 42".
    pub predictions: String,
    /// The flagged images.
    pub flags: Vec<Flag>,
}

impl Manifest {
    /// Writes `flags.json` and `flags.csv` into `dir`, atomically; returns the JSON path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        let out = CleanDir::new(dir);
        let json_path = out.flags_json();
        write_json(&json_path, self)?;
        let mut csv = String::from("file,given,predicted,probability,reason\n");
        for f in &self.flags {
            let _ = writeln!(
                csv,
                "{},{},{},{:.4},{}",
                csv_field(&f.image),
                csv_field(&f.given),
                csv_field(&f.predicted),
                f.probability,
                f.reason.name()
            );
        }
        crate::fsutil::write_atomic(&out.flags_csv(), csv.as_bytes())?;
        Ok(json_path)
    }

    /// Reads a flags file (at most 256 MiB); its class names are checked, since they
    /// come back as relabels.
    pub fn read(path: &Path) -> Result<Manifest> {
        let m: Manifest = read_json(path)?;
        check_class_list(&m.classes, path)?;
        Ok(m)
    }

    /// Flags of one reason.
    pub fn of(&self, reason: Reason) -> impl Iterator<Item = &Flag> {
        self.flags.iter().filter(move |f| f.reason == reason)
    }

    /// Indices of the `names` (training images, relative to the dataset's root) to
    /// train on once the likely mislabelled images are left out; ambiguous images stay.
    pub fn keep(&self, names: &[String]) -> Vec<usize> {
        let out: std::collections::HashSet<&str> = self
            .of(Reason::LikelyMislabelled)
            .map(|f| f.image.as_str())
            .collect();
        (0..names.len())
            .filter(|&i| !out.contains(names[i].as_str()))
            .collect()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_leaves_out_the_likely_mislabelled_images_only() {
        let flag = |image: &str, reason| Flag {
            image: image.into(),
            given: "a".into(),
            predicted: "b".into(),
            probability: 0.95,
            reason,
        };
        let m = Manifest {
            dataset: "d".into(),
            classes: vec!["a".into(), "b".into()],
            rules: Rules::default(),
            predictions: "test".into(),
            flags: vec![
                flag("a/2.png", Reason::LikelyMislabelled),
                flag("b/3.png", Reason::Ambiguous),
                flag("elsewhere.png", Reason::LikelyMislabelled),
            ],
        };
        let names: Vec<String> = ["a/1.png", "a/2.png", "b/3.png"].map(String::from).into();
        assert_eq!(m.keep(&names), [0, 2]);
    }
}
