//! The embedded default dataset: Fashion-MNIST (Zalando, MIT licence), read from its
//! four IDX files and written out as a competition-style folder.
//!
//! The folder has the Analytics Vidhya layout, like the Intel challenge it stands in for:
//! `images/<n>.png` (28x28 grayscale), `train.csv` (`image_name,label`), `test.csv`
//! (`image_name` only), `classes.txt`, and the test labels kept apart for scoring in
//! `answers/test_labels.csv`, which no loader reads.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use image::GrayImage;
use rayon::prelude::*;

use crate::error::{Error, Result, io_err};

/// Fashion-MNIST's classes in label order, spelled as folder-safe names.
pub const CLASSES: [&str; 10] = [
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
];

/// The four files of the Fashion-MNIST release.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Images and labels of one IDX split.
#[derive(Debug, Clone)]
pub struct Split {
    /// The 28x28 grayscale images, in file order.
    pub images: Vec<GrayImage>,
    /// The class id (0..10, an index into [`CLASSES`]) of each image, in the same order.
    pub labels: Vec<u8>,
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut out = Vec::new();
    GzDecoder::new(file)
        .read_to_end(&mut out)
        .map_err(io_err(path))?;
    Ok(out)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn idx_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Idx {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Parses an IDX3 (unsigned byte) image file.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<Vec<GrayImage>> {
    if bytes.len() < 16 || be_u32(bytes, 0) != 0x0803 {
        return Err(idx_err(
            path,
            "bad magic number for an image file (want 0x00000803)",
        ));
    }
    let (n, rows, cols) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8),
        be_u32(bytes, 12),
    );
    let len = rows as usize * cols as usize;
    if bytes.len() != 16 + n * len {
        return Err(idx_err(
            path,
            format!("{} bytes for {n} images of {rows}x{cols}", bytes.len()),
        ));
    }
    Ok(bytes[16..]
        .chunks_exact(len)
        .map(|px| GrayImage::from_raw(cols, rows, px.to_vec()).expect("chunk has rows*cols bytes"))
        .collect())
}

/// Parses an IDX1 (unsigned byte) label file.
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    if bytes.len() < 8 || be_u32(bytes, 0) != 0x0801 {
        return Err(idx_err(
            path,
            "bad magic number for a label file (want 0x00000801)",
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(idx_err(
            path,
            format!("{} bytes for {n} labels", bytes.len()),
        ));
    }
    Ok(bytes[8..].to_vec())
}

/// Reads the training and test splits from the four `.gz` files in `dir`.
pub fn read(dir: &Path) -> Result<(Split, Split)> {
    let split = |images: &str, labels: &str| -> Result<Split> {
        let (ip, lp) = (dir.join(images), dir.join(labels));
        let images = parse_idx_images(&read_gz(&ip)?, &ip)?;
        let labels = parse_idx_labels(&read_gz(&lp)?, &lp)?;
        if images.len() != labels.len() {
            return Err(idx_err(
                &lp,
                format!("{} labels for {} images", labels.len(), images.len()),
            ));
        }
        Ok(Split { images, labels })
    };
    Ok((split(FILES[0], FILES[1])?, split(FILES[2], FILES[3])?))
}

/// How much of the data to write out.
#[derive(Debug, Clone, Default)]
pub struct MaterializeOptions {
    /// Keep only the first N training images (all when `None`).
    pub train_limit: Option<usize>,
    /// Keep only the first N test images (all when `None`).
    pub test_limit: Option<usize>,
    /// Hears of the writing's progress ([`vista_format::Quiet`] by default).
    pub observer: vista_format::Observers,
}

/// Writes Fashion-MNIST from the IDX files in `src` as a competition folder at `out`,
/// unless `out` already holds one. The folder is built beside `out` and renamed into
/// place, so an interrupted run never leaves a half-written dataset behind.
/// Returns `out`.
pub fn materialize(src: &Path, out: &Path, opts: &MaterializeOptions) -> Result<PathBuf> {
    if out.join("train.csv").is_file() {
        return Ok(out.into());
    }
    let (train, test) = read(src)?;
    let take = |n: usize, limit: Option<usize>| limit.map_or(n, |l| l.min(n));
    let (n_train, n_test) = (
        take(train.images.len(), opts.train_limit),
        take(test.images.len(), opts.test_limit),
    );

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fashion-mnist".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let images_dir = tmp.join("images");
    std::fs::create_dir_all(&images_dir).map_err(io_err(&images_dir))?;
    std::fs::create_dir_all(tmp.join("answers")).map_err(io_err(tmp.join("answers")))?;

    let items: Vec<(usize, &GrayImage)> = train.images[..n_train]
        .iter()
        .enumerate()
        .chain(
            test.images[..n_test]
                .iter()
                .enumerate()
                .map(|(i, img)| (train.images.len() + i, img)),
        )
        .collect();
    let task = opts
        .observer
        .task("writing Fashion-MNIST", items.len() as u64);
    items.par_iter().try_for_each(|(id, img)| {
        let path = images_dir.join(format!("{id}.png"));
        img.save(&path).map_err(|source| Error::Image {
            path: path.clone(),
            source,
        })?;
        task.step(1);
        Ok::<_, Error>(())
    })?;
    drop(task);

    let write = |rel: &str, text: String| -> Result<()> {
        let p = tmp.join(rel);
        std::fs::write(&p, text).map_err(io_err(&p))
    };
    let mut train_csv = String::from("image_name,label\n");
    for (i, l) in train.labels[..n_train].iter().enumerate() {
        train_csv.push_str(&format!("{i}.png,{l}\n"));
    }
    let mut test_csv = String::from("image_name\n");
    let mut answers = String::from("image_name,label\n");
    for (i, l) in test.labels[..n_test].iter().enumerate() {
        let id = train.images.len() + i;
        test_csv.push_str(&format!("{id}.png\n"));
        answers.push_str(&format!("{id}.png,{l}\n"));
    }
    write("train.csv", train_csv)?;
    write("test.csv", test_csv)?;
    write("answers/test_labels.csv", answers)?;
    write("classes.txt", CLASSES.join("\n") + "\n")?;
    std::fs::rename(&tmp, out).map_err(io_err(out))?;
    Ok(out.into())
}
