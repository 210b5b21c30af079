//! Turning review decisions into a cleaned dataset, and back: removed images move to a
//! quarantine folder beside the dataset (never deleted), relabels and removals go into
//! the dataset's cleaned view, and undo moves every image back and restores the view
//! that was there before.
//!
//! Every file here may come from someone else (a dataset shipped with its quarantine
//! folder, a journal from another machine), so:
//! - only images that the manifest flagged and the journal decided are acted on, and
//!   every path is checked: a plain relative path to an image, no component of it a
//!   symbolic link, on the dataset's side and on the quarantine's;
//! - a quarantine folder that is a symbolic link is refused;
//! - a move never replaces anything (`rename_noreplace`);
//! - each move is written to `moves.json` before it is made, so a crash between the
//!   two loses nothing: apply and undo can both be run again and complete.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use vista_data::{
    CleanView, IMAGE_EXTENSIONS, PREV_VIEW_FILE, read_limited, refuse_symlink, rename_noreplace,
    view_path, write_atomic,
};

use crate::error::{Error, Result, io_err};
use crate::manifest::Manifest;
use crate::review::{Decision, read_journal};

/// The largest `moves.json` read.
const MAX_MOVES_BYTES: u64 = 256 << 20;

/// The quarantine folder of a dataset: `<root>.quarantine` beside it.
pub fn quarantine_dir(root: &Path) -> PathBuf {
    let name = root
        .file_name()
        .map_or("dataset".into(), |n| n.to_string_lossy().into_owned());
    root.with_file_name(format!("{name}.quarantine"))
}

/// The record of moved images, for undo. An image is listed before it is moved, so the
/// list names every image that may be in quarantine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Moves {
    /// Paths relative to the dataset's root (and to the quarantine folder).
    moved: Vec<String>,
    /// Whether a view existed before the review was applied.
    had_view: bool,
}

/// What applying a journal did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// Images the journal keeps as they are.
    pub kept: usize,
    /// Images given a new class in the dataset's cleaned view.
    pub relabelled: usize,
    /// Images moved to the quarantine folder and left out by the cleaned view.
    pub removed: usize,
    /// Entries not acted on: not flagged by the manifest, not an image, outside the
    /// dataset, through a symbolic link, or missing.
    pub refused: Vec<String>,
}

/// What undoing a review did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Undone {
    /// Images moved back into the dataset.
    pub restored: usize,
    /// Images already back in place (an earlier undo was interrupted, or the move had
    /// been recorded but not made).
    pub already_there: usize,
}

/// Checks that `rel` is a plain relative path to an image file name.
fn image_path(rel: &str) -> Option<&Path> {
    let p = Path::new(rel);
    let plain = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    let image = p
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    (plain && image).then_some(p)
}

/// Whether any existing component of `base/rel` below `base` is a symbolic link.
fn crosses_link(base: &Path, rel: &Path) -> bool {
    let mut p = base.to_path_buf();
    rel.components().any(|c| {
        p.push(c);
        std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink())
    })
}

/// Whether `path` is a regular file (not followed through a link).
fn is_plain_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// The quarantine folder, refused when it is a symbolic link.
fn quarantine_of(root: &Path) -> Result<PathBuf> {
    let q = quarantine_dir(root);
    refuse_symlink(&q)?;
    Ok(q)
}

fn read_moves(path: &Path) -> Result<Option<Moves>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    refuse_symlink(path)?;
    let bytes = read_limited(path, MAX_MOVES_BYTES)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })
}

fn write_moves(path: &Path, moves: &Moves) -> Result<()> {
    let json = serde_json::to_vec_pretty(moves).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(write_atomic(path, &json)?)
}

/// Moves `rel` from below `from` to below `to`, creating `to`'s folders; nothing is
/// replaced and no link is followed.
fn move_image(from: &Path, to: &Path, rel: &Path) -> Result<()> {
    let dst = to.join(rel);
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    if crosses_link(to, rel) {
        return Err(Error::Invalid {
            path: dst,
            message: "lies behind a symbolic link; not moved".into(),
        });
    }
    let src = from.join(rel);
    match rename_noreplace(&src, &dst) {
        Ok(()) => Ok(()),
        Err(vista_format::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::CrossesDevices =>
        {
            copy_then_remove(&src, &dst)
        }
        Err(e) => Err(e.into()),
    }
}

/// Across file systems: a new file (never an existing one), fsynced, then the original
/// removed.
fn copy_then_remove(src: &Path, dst: &Path) -> Result<()> {
    let mut from = std::fs::File::open(src).map_err(io_err(src))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(io_err(dst))?;
    std::io::copy(&mut from, &mut to).map_err(io_err(dst))?;
    to.sync_all().map_err(io_err(dst))?;
    std::fs::remove_file(src).map_err(io_err(src))
}

/// Applies the decisions of `journal` on `manifest`'s images to the dataset at `root`;
/// the journal is renamed to `<journal>.applied` so it is not applied twice. Only images
/// the manifest flagged are acted on. Running it again after an interruption completes
/// the same work.
pub fn apply_journal(root: &Path, manifest: &Manifest, journal: &Path) -> Result<Applied> {
    let decisions = read_journal(journal)?;
    let root = root.canonicalize().map_err(io_err(root))?;
    let quarantine = quarantine_of(&root)?;
    let moves_path = quarantine.join("moves.json");
    let mut moves = match read_moves(&moves_path)? {
        // A run that was interrupted (or an earlier review not undone): the view from
        // before it is kept already.
        Some(m) => m,
        None => {
            // Before anything changes: the view to restore, then the record naming it.
            let moves = Moves {
                had_view: CleanView::keep_previous(&root)?,
                ..Moves::default()
            };
            std::fs::create_dir_all(&quarantine).map_err(io_err(&quarantine))?;
            write_moves(&moves_path, &moves)?;
            moves
        }
    };
    let flagged: HashSet<&str> = manifest.flags.iter().map(|f| f.image.as_str()).collect();
    let mut view = CleanView::read(&root)?.unwrap_or_default();
    let mut applied = Applied::default();
    let mut names: Vec<&String> = decisions.keys().collect();
    names.sort();
    for image in names {
        let decision = &decisions[image];
        let rel = image_path(image).filter(|_| flagged.contains(image.as_str()));
        let Some(rel) = rel.filter(|rel| !crosses_link(&root, rel)) else {
            applied.refused.push(image.clone());
            continue;
        };
        match decision {
            Decision::Keep => applied.kept += 1,
            Decision::Relabel { class } => {
                if !manifest.classes.contains(class) {
                    applied.refused.push(image.clone());
                    continue;
                }
                view.relabelled.insert(rel.to_path_buf(), class.clone());
                applied.relabelled += 1;
            }
            Decision::Remove => {
                let recorded = moves.moved.iter().any(|m| m == image);
                let in_quarantine = is_plain_file(&quarantine.join(rel));
                let in_dataset = is_plain_file(&root.join(rel));
                if recorded && in_quarantine && !in_dataset {
                    // Moved by an interrupted run.
                } else if in_dataset {
                    if !recorded {
                        // The intent first: a crash after the move still finds it.
                        moves.moved.push(image.clone());
                        write_moves(&moves_path, &moves)?;
                    }
                    move_image(&root, &quarantine, rel)?;
                } else {
                    applied.refused.push(image.clone());
                    continue;
                }
                // Listed layouts (CSV) still name the file; the view leaves it out.
                if !view.excluded.iter().any(|p| p == rel) {
                    view.excluded.push(rel.to_path_buf());
                }
                applied.removed += 1;
            }
        }
    }
    view.replace(&root)?;
    let done = journal.with_extension("jsonl.applied");
    refuse_symlink(&done)?;
    std::fs::rename(journal, &done).map_err(io_err(journal))?;
    Ok(applied)
}

/// Moves every quarantined image back and restores the view from before the review.
/// Nothing at a destination is replaced: an image whose place in the dataset is taken
/// again is an error naming it, and it stays in quarantine. An interrupted undo can be
/// run again and completes.
pub fn undo_review(root: &Path) -> Result<Undone> {
    let root = root.canonicalize().map_err(io_err(root))?;
    let quarantine = quarantine_of(&root)?;
    let moves_path = quarantine.join("moves.json");
    let done = quarantine.join("moves.undone.json");
    let Some(moves) = read_moves(&moves_path)? else {
        // An undo that was stopped after its last step (the record's rename) is done:
        // running it again reports so instead of failing.
        return match read_moves(&done)? {
            Some(record) => Ok(Undone {
                restored: 0,
                already_there: record.moved.len(),
            }),
            None => Err(Error::Invalid {
                path: moves_path.clone(),
                message: "no record of moved images: nothing to undo".into(),
            }),
        };
    };
    let mut undone = Undone::default();
    let mut conflicts = Vec::new();
    for image in &moves.moved {
        let Some(rel) = image_path(image)
            .filter(|rel| !crosses_link(&root, rel) && !crosses_link(&quarantine, rel))
        else {
            return Err(Error::Invalid {
                path: moves_path.clone(),
                message: format!(
                    "names `{image}`, which is not a plain path to an image inside the \
                     dataset; this record was not written by vista, and nothing is moved"
                ),
            });
        };
        let in_quarantine = is_plain_file(&quarantine.join(rel));
        let in_dataset = std::fs::symlink_metadata(root.join(rel)).is_ok();
        match (in_quarantine, in_dataset) {
            (true, false) => {
                move_image(&quarantine, &root, rel)?;
                undone.restored += 1;
            }
            (false, true) => undone.already_there += 1,
            (true, true) => conflicts.push(image.clone()),
            (false, false) => {
                return Err(Error::Invalid {
                    path: quarantine.join(rel),
                    message: format!(
                        "`{image}` is neither in quarantine nor in the dataset; was it deleted?"
                    ),
                });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Invalid {
            path: root,
            message: format!(
                "{} image(s) are back in the dataset already and also in quarantine; \
                 nothing was replaced (first: {}). Move one of each pair away and undo again",
                conflicts.len(),
                conflicts[0]
            ),
        });
    }
    let prev = view_path(&root).with_file_name(PREV_VIEW_FILE);
    if moves.had_view && is_plain_file(&prev) {
        let view = view_path(&root);
        refuse_symlink(&view)?;
        std::fs::rename(&prev, &view).map_err(io_err(&prev))?;
        vista_data::sync_dir(&root)?;
    } else {
        CleanView::undo(&root)?;
    }
    refuse_symlink(&done)?;
    std::fs::rename(&moves_path, &done).map_err(io_err(&moves_path))?;
    vista_data::sync_dir(&quarantine)?;
    Ok(undone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_image_paths_are_accepted() {
        for ok in ["a.jpg", "c/a.PNG", "x/y/z.jpeg"] {
            assert!(image_path(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "../a.jpg",
            "/a.jpg",
            "./a.jpg",
            "c/../a.jpg",
            "train.csv",
            "a",
        ] {
            assert!(image_path(bad).is_none(), "{bad}");
        }
    }
}
