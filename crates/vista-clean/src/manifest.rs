//! What the detection's manifest turns into: contact sheets per reason, and the cleaned
//! view that leaves flagged images out. The manifest itself is `vista_format::Manifest`.

use std::path::{Path, PathBuf};

use vista_data::{CleanView, decode_rgb};
use vista_format::CleanDir;
pub use vista_format::Manifest;
use vista_plot::{Tile, tiles_png};

use crate::detect::Reason;
use crate::error::{Error, Result};

/// Draws `<reason>.png` in `dir` for each reason with flags: up to `max` images
/// with given and predicted class and probability. Returns the files written.
pub fn contact_sheets(manifest: &Manifest, dir: &Path, max: usize) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for reason in [
        Reason::LikelyMislabelled,
        Reason::Ambiguous,
        Reason::TopLoss,
    ] {
        let mut tiles = Vec::new();
        for f in manifest.of(reason).take(max) {
            let path = manifest.dataset.join(&f.image);
            let image =
                decode_rgb(&path, vista_data::DEFAULT_MAX_PIXELS).map_err(|p| Error::Invalid {
                    path: path.clone(),
                    message: p.to_string(),
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
        let out = CleanDir::new(dir).contact_sheet(reason);
        let total = manifest.of(reason).count();
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
pub fn manifest_view(
    manifest: &Manifest,
    reasons: &[Reason],
    current: Option<CleanView>,
) -> CleanView {
    let mut view = current.unwrap_or_default();
    for f in manifest
        .flags
        .iter()
        .filter(|f| reasons.contains(&f.reason))
    {
        let p = PathBuf::from(&f.image);
        if !view.excluded.contains(&p) {
            view.excluded.push(p);
        }
    }
    view
}
