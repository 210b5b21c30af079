//! Competition submissions from predictions: Analytics Vidhya's `image_name,label` CSV
//! with class ids, and Kaggle-style folders of predicted images, one per class.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::predictions::Predictions;

/// Analytics Vidhya's format: `image_name,label`, the label being the class id (its
/// position in the class list; for the Intel classes 0..5 = buildings, forest, glacier,
/// mountain, sea, street). Written atomically.
pub fn write_av_csv(preds: &Predictions, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    w.write_record(["image_name", "label"]).map_err(csv_err)?;
    for (name, p) in preds.images.iter().zip(&preds.predicted) {
        w.write_record([name.as_str(), &p.to_string()])
            .map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Read {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    Ok(vista_data::write_atomic(path, &bytes)?)
}

/// How [`write_folders`] puts an image into its class folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// A hard link where the file system allows (no space used; the link shares its
    /// bytes with the original, so editing the submission's file edits the original),
    /// else a copy.
    #[default]
    Link,
    /// Always a copy.
    Copy,
}

/// Puts each predicted image into `out/<predicted class>/<its name>` (its path relative
/// to the dataset, kept whole so two images with one base name never collide), with
/// `predictions.csv` beside them. `sources` maps image names to their files.
///
/// The source images are only ever read: every destination is created new (a hard
/// link, or a copy opened with `create_new`), so nothing is written through an existing
/// path; a copy is made only where a link cannot be (another file system, or links not
/// permitted). The tree is built in a fresh temporary folder beside `out` and renamed
/// into place; `out` must not exist yet. An image listed twice, or a class or image name
/// that is not a plain relative path, is an error before anything is written.
pub fn write_folders(
    preds: &Predictions,
    sources: &HashMap<String, PathBuf>,
    out: &Path,
    placement: Placement,
) -> Result<usize> {
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::Invalid(format!(
            "{} already exists; give a new folder for the submission",
            out.display()
        )));
    }
    for c in &preds.classes {
        vista_data::check_class_name(c)
            .map_err(|why| Error::Invalid(format!("class name {c:?} {why}")))?;
    }
    // Every destination is checked before anything is written.
    let mut seen = HashSet::new();
    let mut plan = Vec::with_capacity(preds.len());
    for (name, &p) in preds.images.iter().zip(&preds.predicted) {
        let src = sources.get(name).ok_or_else(|| {
            Error::Invalid(format!("no image file named `{name}` in the dataset"))
        })?;
        let rel = Path::new(name);
        if rel.as_os_str().is_empty()
            || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(Error::Invalid(format!(
                "image name `{name}` is not a plain relative path"
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::Invalid(format!(
                "image `{name}` is listed twice in the predictions"
            )));
        }
        let class = preds.classes.get(p as usize).ok_or_else(|| {
            Error::Invalid(format!(
                "`{name}` is predicted as class {p}, which does not exist"
            ))
        })?;
        plan.push((name, src, class));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".vista-submission.")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    for c in &preds.classes {
        let dir = tmp.path().join(c);
        std::fs::create_dir(&dir).map_err(io(&dir))?;
    }
    let mut csv = String::from("image_name,label\n");
    for (name, src, class) in plan {
        let dst = tmp.path().join(class).join(name);
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        place(src, &dst, placement)?;
        csv.push_str(&format!("{name},{class}\n"));
    }
    vista_data::write_atomic(&tmp.path().join("predictions.csv"), csv.as_bytes())?;
    let tmp = tmp.keep();
    vista_data::rename_noreplace(&tmp, out).inspect_err(|_| {
        // Leave no half-made tree behind; it holds only links and copies.
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    Ok(preds.len())
}

/// Creates `dst`, which must not exist, as a link to or a copy of `src`.
fn place(src: &Path, dst: &Path, placement: Placement) -> Result<()> {
    use std::io::ErrorKind;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    if placement == Placement::Link {
        match std::fs::hard_link(src, dst) {
            Ok(()) => return Ok(()),
            // Another file system, or a file system or policy that forbids links: copy.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::CrossesDevices
                        | ErrorKind::PermissionDenied
                        | ErrorKind::Unsupported
                ) => {}
            Err(e) => return Err(io(dst)(e)),
        }
    }
    let mut from = std::fs::File::open(src).map_err(io(src))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(io(dst))?;
    std::io::copy(&mut from, &mut to).map_err(io(dst))?;
    to.sync_all().map_err(io(dst))
}
