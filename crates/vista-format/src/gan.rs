//! The GAN's files: its per-epoch and per-step records, the finished generator's
//! record, and the folder of generated images with its manifest and class consistency.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Means over one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanEpoch {
    /// 1-based.
    pub epoch: usize,
    /// The critic's estimate of the Wasserstein distance, `mean C(real) - mean C(fake)`,
    /// averaged over the epoch's critic steps; it falls as the generator improves.
    pub wasserstein: f32,
    /// The generator's loss, `-mean C(fake)`.
    pub gen_loss: f32,
    /// Generator steps taken in the epoch.
    pub gen_steps: usize,
    /// Real images the critic saw per second.
    pub images_per_sec: f32,
    /// Time the epoch took, in seconds.
    pub wall_s: f32,
}

impl GanEpoch {
    /// Column names of [`Self::table_row`].
    pub fn table_header() -> String {
        format!(
            "{:>5} {:>11} {:>9} {:>9} {:>8} {:>7}",
            "epoch", "wasserstein", "gen_loss", "gen_steps", "img/s", "time"
        )
    }

    /// This epoch as one line of the GAN's table.
    pub fn table_row(&self) -> String {
        format!(
            "{:>5} {:>11.5} {:>9.5} {:>9} {:>8.0} {:>7}",
            self.epoch,
            self.wasserstein,
            self.gen_loss,
            self.gen_steps,
            self.images_per_sec,
            crate::format_secs(self.wall_s)
        )
    }
}

/// One generator step and the critic steps before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GanStep {
    /// 0-based index of the generator step, counted over the whole run.
    pub step: usize,
    /// 1-based epoch the step belongs to.
    pub epoch: usize,
    /// The critic's Wasserstein estimate, averaged over the critic steps since the last
    /// generator step.
    pub wasserstein: f32,
    /// The generator's loss at this step, `-mean C(fake)`.
    pub gen_loss: f32,
}

/// `generator.json`: written before the finished `generator.bin`, so the weights are
/// always as old as it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorInfo {
    /// Epochs the generator trained.
    pub epochs: usize,
}

/// `synthetic.json`: which images are generated, and by what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticManifest {
    /// Marks the folder's images as generated, not real; vista always writes `true`.
    pub synthetic: bool,
    /// The GAN run and the generator file the images came from.
    pub run: PathBuf,
    /// The generator's weights file.
    pub generator: PathBuf,
    /// Epochs the generator had trained.
    pub epochs: usize,
    /// Seed of the noise the images were generated from.
    pub seed: u64,
    /// Images generated for each class.
    pub per_class: usize,
    /// Side of the generated images, in pixels.
    pub size: usize,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// One entry per image: its path below the folder and its intended class.
    pub images: Vec<SyntheticImage>,
}

/// One generated image of a [`SyntheticManifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticImage {
    /// Path below the folder, `<class>/gan-<index>.png`.
    pub file: String,
    /// The class the image was generated for.
    pub class: String,
}

/// `consistency.json`: how often a classifier trained on real images agrees with the
/// class each image was generated for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    /// The run folder of the classifier that judged the images.
    pub classifier: PathBuf,
    /// Share (0..1) of all images put in their intended class.
    pub overall: f64,
    /// Each class's name and the share (0..1) of its images put in it, in label order.
    pub per_class: Vec<(String, f64)>,
}

impl Consistency {
    /// Scores images generated for `labels` by a classifier's probabilities `probs`
    /// (`[images, classes]`, row-major): the share whose most probable class is the one
    /// they were generated for, overall and per class (0 for a class with no image).
    pub fn score(classifier: PathBuf, probs: &[f32], labels: &[u32], classes: &[String]) -> Self {
        let k = classes.len();
        assert_eq!(
            probs.len(),
            labels.len() * k,
            "one row of probabilities per image"
        );
        let mut hit = vec![0usize; k];
        let mut all = vec![0usize; k];
        for (row, &l) in probs.chunks_exact(k).zip(labels) {
            let best = (row.iter().enumerate())
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            all[l as usize] += 1;
            hit[l as usize] += usize::from(best == l as usize);
        }
        Self {
            classifier,
            overall: hit.iter().sum::<usize>() as f64 / all.iter().sum::<usize>().max(1) as f64,
            per_class: (classes.iter().zip(hit.iter().zip(&all)))
                .map(|(c, (&h, &a))| (c.clone(), h as f64 / a.max(1) as f64))
                .collect(),
        }
    }

    /// The scores as text: the overall share, then one line per class.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!(
            "class consistency (classifier {}): {:.1}% overall\n",
            self.classifier.display(),
            100.0 * self.overall
        );
        for (class, v) in &self.per_class {
            let _ = writeln!(s, "  {class:<16} {:>5.1}%", 100.0 * v);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_counts_the_images_put_in_their_intended_class() {
        let classes = ["cat", "dog", "owl"].map(String::from);
        // Two cats (one judged a dog), one dog judged a dog, no owl.
        let probs = [0.8, 0.1, 0.1, 0.3, 0.6, 0.1, 0.2, 0.7, 0.1];
        let c = Consistency::score("judge".into(), &probs, &[0, 0, 1], &classes);
        assert!((c.overall - 2.0 / 3.0).abs() < 1e-12);
        let per: Vec<f64> = c.per_class.iter().map(|(_, v)| *v).collect();
        assert_eq!(per, [0.5, 1.0, 0.0]);
        let table = c.table();
        assert!(
            table.contains("66.7% overall") && table.contains("  cat               50.0%"),
            "{table}"
        );
    }
}
