//! Which files of a dataset a command works on, and what it calls them: the training
//! images' names (the keys of cleaning manifests), the split that `predict` reads, and
//! the names of prediction rows.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::source::Dataset;

/// The images to predict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PredictSplit {
    /// The unlabelled images when the dataset has any (a competition's images to
    /// submit), else the labelled test split, else the validation set.
    #[default]
    Auto,
    /// The labelled held-out images.
    Test,
    /// The dataset's own validation set.
    Valid,
    /// The images without labels.
    Unlabelled,
}

impl PredictSplit {
    /// The names the splits are given on the command line, as [`PredictSplit::name`]
    /// spells them.
    pub const NAMES: [&str; 4] = ["auto", "test", "valid", "unlabelled"];

    /// The split's name: `"auto"`, `"test"`, `"valid"` or `"unlabelled"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Test => "test",
            Self::Valid => "valid",
            Self::Unlabelled => "unlabelled",
        }
    }
}

impl fmt::Display for PredictSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PredictSplit {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "test" => Ok(Self::Test),
            "valid" | "val" => Ok(Self::Valid),
            "unlabelled" | "unlabeled" => Ok(Self::Unlabelled),
            other => Err(format!(
                "unknown split `{other}` (use {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// The files of one split, with their labels when the split has them.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitFiles {
    /// The split they came from (never [`PredictSplit::Auto`]).
    pub split: PredictSplit,
    /// The image files, in the dataset's listing order.
    pub files: Vec<PathBuf>,
    /// The class id of each file, in the same order; `None` for the unlabelled split.
    pub labels: Option<Vec<u32>>,
}

impl Dataset {
    /// Paths of the training images relative to the dataset's root, as cleaning
    /// manifests and review journals name them.
    pub fn train_names(&self) -> Vec<String> {
        (self.train.iter())
            .map(|s| relative_name(&self.root, &s.path))
            .collect()
    }

    /// The files `split` selects; an empty selection is an error naming the split.
    pub fn files_to_predict(&self, split: PredictSplit) -> Result<SplitFiles> {
        let split = match split {
            PredictSplit::Auto if !self.unlabelled.is_empty() => PredictSplit::Unlabelled,
            PredictSplit::Auto if self.test.is_empty() && !self.valid.is_empty() => {
                PredictSplit::Valid
            }
            PredictSplit::Auto => PredictSplit::Test,
            s => s,
        };
        let labelled = |samples: &[crate::Sample]| {
            (
                samples.iter().map(|s| s.path.clone()).collect(),
                Some(samples.iter().map(|s| s.label).collect()),
            )
        };
        let (files, labels) = match split {
            PredictSplit::Unlabelled => (self.unlabelled.clone(), None),
            PredictSplit::Valid => labelled(&self.valid),
            _ => labelled(&self.test),
        };
        if files.is_empty() {
            return Err(Error::EmptySplit {
                root: self.root.clone(),
                split: split.name(),
            });
        }
        Ok(SplitFiles {
            split,
            files,
            labels,
        })
    }

    /// Every image file by the name a prediction file gives it ([`row_names`] of its
    /// split): test images first, then unlabelled, then validation, then training images.
    pub fn files_by_row_name(&self) -> HashMap<String, PathBuf> {
        let mut out = HashMap::new();
        for list in [
            self.test.iter().map(|s| s.path.clone()).collect::<Vec<_>>(),
            self.unlabelled.clone(),
            self.valid.iter().map(|s| s.path.clone()).collect(),
            self.train.iter().map(|s| s.path.clone()).collect(),
        ] {
            for (name, file) in row_names(&self.root, &list).into_iter().zip(list) {
                out.entry(name).or_insert(file);
            }
        }
        out
    }
}

/// The names of prediction rows: each file's name, or its path below `root` for every
/// row when two files share a name (as `cat/1.jpg` and `dog/1.jpg` do).
pub fn row_names(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = (files.iter())
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let unique: HashSet<&String> = names.iter().collect();
    if unique.len() == names.len() {
        return names;
    }
    files.iter().map(|p| relative_name(root, p)).collect()
}

fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassMap, Layout, Sample};

    fn dataset(test: usize, unlabelled: usize) -> Dataset {
        let root = PathBuf::from("/data");
        Dataset {
            train: vec![Sample {
                path: root.join("train/cat/1.jpg"),
                label: 0,
            }],
            valid: Vec::new(),
            test: (0..test)
                .map(|i| Sample {
                    path: root.join(format!("test/dog/{i}.jpg")),
                    label: 1,
                })
                .collect(),
            unlabelled: (0..unlabelled)
                .map(|i| root.join(format!("pred/{i}.jpg")))
                .collect(),
            root,
            layout: Layout::ImageFolder,
            classes: ClassMap::new(vec!["cat".into(), "dog".into()]),
            problems: Vec::new(),
            view: None,
        }
    }

    #[test]
    fn auto_prefers_the_unlabelled_images_and_falls_back_to_the_test_split() {
        let both = dataset(2, 3);
        let auto = both.files_to_predict(PredictSplit::Auto).unwrap();
        assert_eq!(
            (auto.split, auto.files.len(), auto.labels),
            (PredictSplit::Unlabelled, 3, None)
        );
        let test = both.files_to_predict(PredictSplit::Test).unwrap();
        assert_eq!(test.labels, Some(vec![1, 1]));
        let only_test = dataset(2, 0).files_to_predict(PredictSplit::Auto).unwrap();
        assert_eq!(only_test.split, PredictSplit::Test);
        assert!(matches!(
            dataset(0, 0).files_to_predict(PredictSplit::Auto),
            Err(Error::EmptySplit { split: "test", .. })
        ));
        assert!(matches!(
            dataset(2, 0).files_to_predict(PredictSplit::Unlabelled),
            Err(Error::EmptySplit {
                split: "unlabelled",
                ..
            })
        ));
    }

    #[test]
    fn split_names_parse_and_print_alike() {
        for name in PredictSplit::NAMES {
            assert_eq!(name.parse::<PredictSplit>().unwrap().to_string(), name);
        }
        assert!(
            "training"
                .parse::<PredictSplit>()
                .unwrap_err()
                .contains("auto, test, valid, unlabelled")
        );
    }

    #[test]
    fn rows_are_file_names_unless_two_files_share_one() {
        let root = Path::new("/data");
        let unique = [root.join("a/1.jpg"), root.join("b/2.jpg")];
        assert_eq!(row_names(root, &unique), ["1.jpg", "2.jpg"]);
        let clash = [
            root.join("a/1.jpg"),
            root.join("b/1.jpg"),
            root.join("b/2.jpg"),
        ];
        assert_eq!(row_names(root, &clash), ["a/1.jpg", "b/1.jpg", "b/2.jpg"]);
        let ds = dataset(1, 1);
        assert_eq!(ds.train_names(), ["train/cat/1.jpg"]);
        let files = ds.files_by_row_name();
        assert_eq!(
            files["0.jpg"],
            PathBuf::from("/data/test/dog/0.jpg"),
            "test before unlabelled"
        );
        assert_eq!(files["1.jpg"], PathBuf::from("/data/train/cat/1.jpg"));
    }
}
