//! vista-data: image datasets for training classifiers.
//!
//! - [`open`] detects a dataset's layout (image folders, Kaggle Intel, Analytics Vidhya,
//!   a `path,label` CSV) and lists its samples; [`load`] decodes every image once into a
//!   cache ([`Images`], in memory up to a budget), naming every bad file in a
//!   [`ProblemReport`].
//! - [`augment`] and [`AugmentConfig`] are fastai's `aug_transforms` on the CPU;
//!   [`mixup`] blends images and labels.
//! - [`Loader`] builds normalized, seeded batches on worker threads, at any image size.
//! - [`CleanView`] (`vista-clean.json`) leaves images out and corrects labels for every
//!   loader, without touching the files.
//! - [`fashion_mnist`] turns the embedded Fashion-MNIST files into a competition folder.
//!
//! # Example
//!
//! An image-folder dataset (one folder per class) is listed, then decoded:
//!
//! ```
//! use vista_data::{Layout, LoadOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! for (class, n) in [("cat", 2), ("dog", 3)] {
//!     std::fs::create_dir(dir.path().join(class))?;
//!     for i in 0..n {
//!         image::RgbImage::new(8, 8).save(dir.path().join(class).join(format!("{i}.png")))?;
//!     }
//! }
//!
//! let dataset = vista_data::open(dir.path())?;
//! assert_eq!(dataset.layout, Layout::ImageFolder);
//! assert_eq!(dataset.classes.classes, ["cat", "dog"]);
//! assert_eq!(dataset.train.len(), 5);
//! assert_eq!(dataset.classes.name(dataset.train[4].label), Some("dog"));
//!
//! let loaded = vista_data::load(dir.path(), &LoadOptions::default())?;
//! assert_eq!(loaded.train.len(), 5);
//! assert_eq!(loaded.train.dimensions(0), (8, 8));
//! assert!(loaded.report.is_empty());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod augment;
mod batch;
mod cache;
mod classes;
mod decode;
mod error;
pub mod fashion_mnist;
mod grid;
mod images;
mod loader;
mod mixup;
mod problem;
mod resize;
mod select;
mod source;
mod split;
mod view;

pub use augment::{
    AugmentConfig, AugmentParams, CoordMap, CropRect, apply, augment, centre_crop, draw_params,
    hflip, hflip_chw, random_resized_crop, resize_plain,
};
#[cfg(feature = "tensor")]
pub use batch::labels_tensor;
pub use batch::{Batch, normalize_from_images};
pub use cache::{LoadOptions, Loaded, bound_side, bounded_size, load, load_extra};
pub use classes::{ClassMap, INTEL_CLASSES, MAX_CLASS_FILE_BYTES};
pub use decode::{
    DEFAULT_MAX_PIXELS, Header, MAX_HEADER_BYTES, MAX_IMAGE_FILE_BYTES, decode_rgb,
    decode_rgb_bytes, probe, probe_bytes,
};
pub use error::{Error, Result};
// The file helpers, the class-name rule and seed derivation live in `vista-format`;
// they are re-exported here for the crates and programs that use them with datasets.
pub use grid::grid;
pub use images::{ImageSource, ImageStore, Images, Stored, default_cache_budget};
pub use loader::{Epoch, Loader, LoaderConfig};
pub use mixup::{Mix, draw_lambdas, mixup, soft_targets};
pub use problem::{OnBadImage, Problem, ProblemKind, ProblemReport};
pub use resize::{Filter, resize_rgb};
pub use select::{PredictSplit, SplitFiles, row_names};
pub use source::{
    CsvColumns, CsvRow, Dataset, FILE_COLUMNS, IGNORED_NAMES, IMAGE_EXTENSIONS, LABEL_COLUMNS,
    Layout, MAX_CSV_BYTES, MAX_FIND_DEPTH, MAX_FIND_ENTRIES, OWN_FILES, RowSplit, SPLIT_COLUMNS,
    Sample, VALID_DIRS, detect_columns, detect_layout, find_images, open, parse_dataset_csv,
};
pub use split::stratified_split;
pub use view::{CleanView, MAX_VIEW_BYTES, PREV_VIEW_FILE, UNDONE_VIEW_FILE, VIEW_FILE, view_path};
pub use vista_format::{
    BadClassName, MAX_CLASS_NAME_BYTES, Normalize, check_class_name, derive_seed, fault_point,
    read_limited, refuse_symlink, rename_noreplace, sync_dir, write_atomic, write_atomic_with,
};
