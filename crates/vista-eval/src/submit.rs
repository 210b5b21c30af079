//! Competition submissions from predictions: Analytics Vidhya's `image_name,label` CSV
//! with class ids, and Kaggle-style folders of predicted images, one per class.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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

/// Puts a copy of each predicted image into `out/<predicted class>/` (a hard link where
/// the file system allows, so no space is used), with `predictions.csv` beside them.
/// `sources` maps image names to their files. The tree is built under a temporary name
/// and renamed, and `out` must not exist yet: nothing is overwritten, and the source
/// images are only read.
pub fn write_folders(
    preds: &Predictions,
    sources: &HashMap<String, PathBuf>,
    out: &Path,
) -> Result<usize> {
    if out.exists() {
        return Err(Error::Invalid(format!(
            "{} already exists; give a new folder for the submission",
            out.display()
        )));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map_or("submission".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Read { path, source }
    };
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for c in &preds.classes {
        std::fs::create_dir_all(tmp.join(c)).map_err(io(&tmp.join(c)))?;
    }
    let mut csv = String::from("image_name,label\n");
    for (name, &p) in preds.images.iter().zip(&preds.predicted) {
        let src = sources.get(name).ok_or_else(|| {
            Error::Invalid(format!("no image file named `{name}` in the dataset"))
        })?;
        let class = &preds.classes[p as usize];
        let file = Path::new(name)
            .file_name()
            .map_or_else(|| name.clone(), |f| f.to_string_lossy().into_owned());
        let dst = tmp.join(class).join(&file);
        if std::fs::hard_link(src, &dst).is_err() {
            std::fs::copy(src, &dst).map_err(io(src))?;
        }
        csv.push_str(&format!("{name},{class}\n"));
    }
    std::fs::write(tmp.join("predictions.csv"), csv).map_err(io(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io(out))?;
    Ok(preds.len())
}
