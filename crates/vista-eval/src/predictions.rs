//! A prediction file: per image its name, its label when known, the predicted class and
//! every class's probability. `vista predict` writes one; ensembling, evaluation and
//! submissions read them, so separately trained models combine.
//!
//! The CSV's header is `image[,label],prediction[,prediction/2,...],<class 0>,<class
//! 1>,...`; labels and predictions are class names, so a file reads on its own. The
//! optional `prediction/<r>` columns name the class ranked `r` (a class name cannot hold
//! a `/`, so they are never taken for classes); readers skip them.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The start of the header of a rank column (`prediction/2`: the second most likely class).
pub const RANK_COLUMN: &str = "prediction/";

/// The largest prediction file read.
pub const MAX_PREDICTIONS_BYTES: u64 = 4 << 30;

/// Predictions of one model (or one ensemble) for a list of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The class names, in label-id order; probability column `c` is class `c`.
    pub classes: Vec<String>,
    /// File names, as the dataset's CSV or folder names them.
    pub images: Vec<String>,
    /// The true class of each image, when known.
    pub labels: Option<Vec<u32>>,
    /// The predicted class of each image. It is the most probable class, except for a
    /// majority vote, whose ties are broken at random.
    pub predicted: Vec<u32>,
    /// Row-major `[images, classes]`.
    pub probs: Vec<f32>,
}

/// The index of the largest value; the first one on ties.
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as u32
}

impl Predictions {
    /// Predictions that take the most probable class of each row of `probs`.
    pub fn from_probs(
        classes: Vec<String>,
        images: Vec<String>,
        labels: Option<Vec<u32>>,
        probs: Vec<f32>,
    ) -> Self {
        let k = classes.len().max(1);
        assert_eq!(
            probs.len(),
            images.len() * classes.len(),
            "one row per image"
        );
        let predicted = probs.chunks_exact(k).map(argmax).collect();
        Self {
            classes,
            images,
            labels,
            predicted,
            probs,
        }
    }

    /// The number of images predicted.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when no image is predicted.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The number of classes, which is the number of probabilities per image.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The probabilities of image `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        let k = self.num_classes();
        &self.probs[i * k..(i + 1) * k]
    }

    /// Adds the labels of the images `labels` names (file name -> class id); returns how
    /// many images got one. Images without a label keep none, so the file stays whole.
    pub fn attach_labels(&mut self, labels: &HashMap<String, u32>) -> Result<usize> {
        let found: Vec<Option<u32>> = self.images.iter().map(|n| labels.get(n).copied()).collect();
        let matched = found.iter().flatten().count();
        if matched < self.len() {
            return Err(Error::Invalid(format!(
                "{} of {} predicted images have no label (the first is {})",
                self.len() - matched,
                self.len(),
                self.images[found.iter().position(Option::is_none).unwrap_or(0)]
            )));
        }
        self.labels = Some(found.into_iter().flatten().collect());
        Ok(matched)
    }

    /// The classes of image `i`, most likely first: the predicted class, then the others
    /// by falling probability (the lower class id first on ties).
    pub fn ranked(&self, i: usize) -> Vec<u32> {
        let row = self.row(i);
        let first = self.predicted[i];
        let mut rest: Vec<u32> = (0..row.len() as u32).filter(|&c| c != first).collect();
        rest.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
        std::iter::once(first).chain(rest).collect()
    }

    /// Writes the CSV atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        self.write_csv_top(path, 1)
    }

    /// Writes the CSV atomically with a `prediction/<r>` column for each rank `r` from 2
    /// to `top_k` (at most the number of classes), naming the class ranked there.
    pub fn write_csv_top(&self, path: &Path, top_k: usize) -> Result<()> {
        let ranks = top_k.clamp(1, self.num_classes().max(1));
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_err = |source| Error::Csv {
            path: path.to_path_buf(),
            source,
        };
        let mut header = vec!["image".to_string()];
        if self.labels.is_some() {
            header.push("label".into());
        }
        header.push("prediction".into());
        header.extend((2..=ranks).map(|r| format!("{RANK_COLUMN}{r}")));
        header.extend(self.classes.iter().cloned());
        w.write_record(&header).map_err(csv_err)?;
        for i in 0..self.len() {
            let mut rec = vec![self.images[i].clone()];
            if let Some(labels) = &self.labels {
                rec.push(self.classes[labels[i] as usize].clone());
            }
            rec.push(self.classes[self.predicted[i] as usize].clone());
            if ranks > 1 {
                let ranked = self.ranked(i);
                rec.extend((ranked[1..ranks].iter()).map(|&c| self.classes[c as usize].clone()));
            }
            rec.extend(self.row(i).iter().map(|p| format!("{p:.6}")));
            w.write_record(&rec).map_err(csv_err)?;
        }
        let bytes = w.into_inner().map_err(|e| Error::Read {
            path: path.to_path_buf(),
            source: e.into_error(),
        })?;
        Ok(vista_data::write_atomic(path, &bytes)?)
    }

    /// Reads a CSV written by [`Predictions::write_csv`] (or `vista predict`). A file
    /// from elsewhere is checked: at most [`MAX_PREDICTIONS_BYTES`], class names that can
    /// name folders, each listed once, and each image listed once.
    pub fn read_csv(path: &Path) -> Result<Self> {
        let bytes = vista_data::read_limited(path, MAX_PREDICTIONS_BYTES)?;
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let format = |line: usize, message: String| Error::Format {
            path: path.to_path_buf(),
            line,
            message,
        };
        let header: Vec<String> = r
            .headers()
            .map_err(|source| Error::Csv {
                path: path.to_path_buf(),
                source,
            })?
            .iter()
            .map(str::to_owned)
            .collect();
        let has_label = header.get(1).is_some_and(|h| h == "label");
        let prediction_at = if has_label { 2 } else { 1 };
        let ranks = (header.iter().skip(prediction_at + 1))
            .take_while(|h| h.starts_with(RANK_COLUMN))
            .count();
        let first_class = prediction_at + 1 + ranks;
        if header.first().map(String::as_str) != Some("image")
            || header.get(prediction_at).map(String::as_str) != Some("prediction")
            || header.len() <= first_class
        {
            return Err(format(
                1,
                "expected the header `image[,label],prediction[,prediction/2,...],<classes...>`"
                    .into(),
            ));
        }
        let classes = header[first_class..].to_vec();
        vista_data::ClassMap::checked(classes.clone(), path)?;
        let mut seen = HashMap::new();
        let ids: HashMap<&str, u32> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u32))
            .collect();
        let (mut images, mut labels, mut predicted, mut probs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, rec) in r.records().enumerate() {
            let line = row + 2;
            let rec = rec.map_err(|source| Error::Csv {
                path: path.to_path_buf(),
                source,
            })?;
            if rec.len() != header.len() {
                return Err(format(
                    line,
                    format!("{} fields, the header has {}", rec.len(), header.len()),
                ));
            }
            let class = |field: &str| {
                ids.get(field)
                    .copied()
                    .ok_or_else(|| format(line, format!("unknown class `{field}`")))
            };
            if let Some(first) = seen.insert(rec[0].to_string(), line) {
                return Err(format(
                    line,
                    format!(
                        "image `{}` is listed twice (first on line {first})",
                        &rec[0]
                    ),
                ));
            }
            images.push(rec[0].to_string());
            if has_label {
                labels.push(class(&rec[1])?);
            }
            predicted.push(class(&rec[prediction_at])?);
            for field in rec.iter().skip(first_class) {
                let p: f32 = field
                    .parse()
                    .map_err(|_| format(line, format!("`{field}` is not a probability")))?;
                if !p.is_finite() {
                    return Err(format(line, format!("`{field}` is not a probability")));
                }
                probs.push(p);
            }
        }
        Ok(Self {
            classes,
            images,
            labels: has_label.then_some(labels),
            predicted,
            probs,
        })
    }
}

/// Reads a labels CSV (`image_name,label`, as Analytics Vidhya's `train.csv` and the
/// embedded data's `answers/test_labels.csv`): labels are class ids or class names.
/// An image named twice is an error.
pub fn read_labels(path: &Path, classes: &[String]) -> Result<HashMap<String, u32>> {
    let bytes = vista_data::read_limited(path, MAX_PREDICTIONS_BYTES)?;
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    let mut out = HashMap::new();
    for (row, rec) in r.records().enumerate() {
        let line = row + 2;
        let rec = rec.map_err(|source| Error::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        let (Some(name), Some(label)) = (rec.get(0), rec.get(1)) else {
            return Err(Error::Format {
                path: path.to_path_buf(),
                line,
                message: "expected `image_name,label`".into(),
            });
        };
        let label = label.trim();
        let id = classes
            .iter()
            .position(|c| c == label)
            .map(|i| i as u32)
            .or_else(|| {
                label
                    .parse::<u32>()
                    .ok()
                    .filter(|&i| (i as usize) < classes.len())
            })
            .ok_or_else(|| Error::Format {
                path: path.to_path_buf(),
                line,
                message: format!("unknown label `{label}`"),
            })?;
        if out.insert(name.trim().to_string(), id).is_some() {
            return Err(Error::Format {
                path: path.to_path_buf(),
                line,
                message: format!("image `{}` is listed twice", name.trim()),
            });
        }
    }
    Ok(out)
}
