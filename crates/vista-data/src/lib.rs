//! vista-data: image datasets for training classifiers.
//!
//! - [`open`] detects a dataset's layout (image folders, Kaggle Intel, Analytics Vidhya,
//!   a `path,label` CSV) and lists its samples; [`load`] decodes every image once into an
//!   in-memory cache, naming every bad file in a [`ProblemReport`].
//! - [`augment`] and [`AugmentConfig`] are fastai's `aug_transforms` on the CPU;
//!   [`mixup`] blends images and labels.
//! - [`Loader`] builds normalized, seeded batches on worker threads, at any image size.
//! - [`CleanView`] (`vista-clean.json`) leaves images out and corrects labels for every
//!   loader, without touching the files.
//! - [`fashion_mnist`] turns the embedded Fashion-MNIST files into a competition folder.

mod augment;
mod batch;
mod cache;
mod classes;
mod decode;
mod error;
pub mod fashion_mnist;
mod grid;
mod loader;
mod mixup;
mod problem;
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
pub use cache::{LoadOptions, Loaded, bound_side, load, load_extra};
pub use classes::{ClassMap, INTEL_CLASSES, MAX_CLASS_FILE_BYTES};
pub use decode::{
    DEFAULT_MAX_PIXELS, Header, MAX_HEADER_BYTES, MAX_IMAGE_FILE_BYTES, decode_rgb,
    decode_rgb_bytes, probe, probe_bytes,
};
pub use error::{Error, Result};
// The file helpers, the class-name rule and seed derivation live in `vista-format`;
// they are re-exported here for the crates and programs that use them with datasets.
pub use grid::grid;
pub use loader::{Epoch, Loader, LoaderConfig};
pub use mixup::{Mix, draw_lambdas, mixup, soft_targets};
pub use problem::{OnBadImage, Problem, ProblemKind, ProblemReport};
pub use select::{PredictSplit, SplitFiles, row_names};
pub use source::{
    CsvRow, Dataset, IGNORED_NAMES, IMAGE_EXTENSIONS, Layout, MAX_CSV_BYTES, OWN_FILES, Sample,
    detect_layout, open, parse_dataset_csv,
};
pub use split::stratified_split;
pub use view::{CleanView, MAX_VIEW_BYTES, PREV_VIEW_FILE, UNDONE_VIEW_FILE, VIEW_FILE, view_path};
pub use vista_format::{
    BadClassName, MAX_CLASS_NAME_BYTES, Normalize, check_class_name, derive_seed, fault_point,
    read_limited, refuse_symlink, rename_noreplace, sync_dir, write_atomic, write_atomic_with,
};
