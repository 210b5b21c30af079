//! The detection's output: a manifest of flagged images (CSV for people, JSON for
//! tools), contact sheets per reason, and the cleaned view it turns into.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vista_data::{CleanView, decode_rgb, write_atomic};
use vista_eval::{Tile, tiles_png};

use crate::detect::{Flag, Reason, Rules};
use crate::error::{Error, Result, io_err};

/// Flagged images of one dataset and how they were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The dataset's root (flags' paths are relative to it).
    pub dataset: PathBuf,
    pub classes: Vec<String>,
    pub rules: Rules,
    /// Where the predictions came from, e.g. "out-of-fold, 5 folds, seed 42".
    pub predictions: String,
    pub flags: Vec<Flag>,
}

impl Manifest {
    /// Writes `flags.json` and `flags.csv` into `dir`, atomically; returns the JSON path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let json_path = dir.join("flags.json");
        let json = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: json_path.clone(),
            source,
        })?;
        write_atomic(&json_path, &json)?;
        let mut csv = String::from("file,given,predicted,probability,reason\n");
        for f in &self.flags {
            csv.push_str(&format!(
                "{},{},{},{:.4},{}\n",
                csv_field(&f.image),
                csv_field(&f.given),
                csv_field(&f.predicted),
                f.probability,
                f.reason.name()
            ));
        }
        write_atomic(&dir.join("flags.csv"), csv.as_bytes())?;
        Ok(json_path)
    }

    /// Reads a flags file (at most 256 MiB); its class names are checked, since they
    /// come back as relabels.
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = vista_data::read_limited(path, 256 << 20)?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        vista_data::ClassMap::checked(m.classes.clone(), path)?;
        Ok(m)
    }

    /// Flags of one reason.
    pub fn of(&self, reason: Reason) -> impl Iterator<Item = &Flag> {
        self.flags.iter().filter(move |f| f.reason == reason)
    }

    /// Draws `<reason>.png` in `dir` for each reason with flags: up to `max` images
    /// with given and predicted class and probability. Returns the files written.
    pub fn contact_sheets(&self, dir: &Path, max: usize) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for reason in [
            Reason::LikelyMislabelled,
            Reason::Ambiguous,
            Reason::TopLoss,
        ] {
            let mut tiles = Vec::new();
            for f in self.of(reason).take(max) {
                let path = self.dataset.join(&f.image);
                let image = decode_rgb(&path, vista_data::DEFAULT_MAX_PIXELS).map_err(|p| {
                    Error::Invalid {
                        path: path.clone(),
                        message: p.to_string(),
                    }
                })?;
                tiles.push(Tile {
                    image,
                    caption: vec![
                        format!("given {}", f.given),
                        format!("pred {} {:.2}", f.predicted, f.probability),
                        f.image.clone(),
                    ],
                });
            }
            if tiles.is_empty() {
                continue;
            }
            let out = dir.join(format!("{}.png", reason.name()));
            let total = self.of(reason).count();
            tiles_png(
                &out,
                &format!(
                    "{}: {} of {total} flagged images",
                    reason.name(),
                    tiles.len()
                ),
                &tiles,
                6,
                96,
            )?;
            written.push(out);
        }
        Ok(written)
    }

    /// The cleaned view that leaves out the flagged images of `reasons`, added to the
    /// dataset's current view.
    pub fn view(&self, reasons: &[Reason], current: Option<CleanView>) -> CleanView {
        let mut view = current.unwrap_or_default();
        for f in self.flags.iter().filter(|f| reasons.contains(&f.reason)) {
            let p = PathBuf::from(&f.image);
            if !view.excluded.contains(&p) {
                view.excluded.push(p);
            }
        }
        view
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
