//! Turning review decisions into a cleaned dataset, and back: removed images move to a
//! quarantine folder beside the dataset (never deleted), relabels and removals go into
//! the dataset's cleaned view, and undo moves every image back and restores the view
//! that was there before.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vista_data::{CleanView, view_path, write_atomic};

use crate::error::{Error, Result, io_err};
use crate::review::{Decision, read_journal, resolve_inside};

/// The quarantine folder of a dataset: `<root>.quarantine` beside it.
pub fn quarantine_dir(root: &Path) -> PathBuf {
    let name = root
        .file_name()
        .map_or("dataset".into(), |n| n.to_string_lossy().into_owned());
    root.with_file_name(format!("{name}.quarantine"))
}

/// The record of moved images, for undo.
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
    pub kept: usize,
    pub relabelled: usize,
    pub removed: usize,
    /// Entries naming a file outside the dataset or missing: not acted on.
    pub refused: Vec<String>,
}

fn move_file(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        return Err(Error::Invalid {
            path: to.to_path_buf(),
            message: format!("already exists; {} is left where it is", from.display()),
        });
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::rename(from, to).or_else(|_| {
        // Across file systems: copy, check, then remove the original.
        std::fs::copy(from, to).map_err(io_err(to))?;
        std::fs::remove_file(from).map_err(io_err(from))
    })
}

/// Applies the decisions of `journal` to the dataset at `root`; the journal is renamed
/// to `<journal>.applied` so it is not applied twice.
pub fn apply_journal(root: &Path, journal: &Path) -> Result<Applied> {
    let decisions = read_journal(journal)?;
    let root = root.canonicalize().map_err(io_err(root))?;
    let quarantine = quarantine_dir(&root);
    let moves_path = quarantine.join("moves.json");
    let mut moves: Moves = match std::fs::read_to_string(&moves_path) {
        Ok(t) => serde_json::from_str(&t).map_err(|source| Error::Json {
            path: moves_path.clone(),
            source,
        })?,
        Err(_) => Moves {
            had_view: view_path(&root).exists(),
            ..Moves::default()
        },
    };
    let mut view = CleanView::read(&root)?.unwrap_or_default();
    let mut applied = Applied::default();
    let mut names: Vec<&String> = decisions.keys().collect();
    names.sort();
    for image in names {
        let decision = &decisions[image];
        if matches!(decision, Decision::Keep) {
            applied.kept += 1;
            continue;
        }
        let Some(real) = resolve_inside(&root, image) else {
            applied.refused.push(image.clone());
            continue;
        };
        match decision {
            Decision::Keep => {}
            Decision::Relabel { class } => {
                view.relabelled.insert(PathBuf::from(image), class.clone());
                applied.relabelled += 1;
            }
            Decision::Remove => {
                move_file(&real, &quarantine.join(image))?;
                moves.moved.push(image.clone());
                // Listed layouts (CSV) still name the file; the view leaves it out.
                view.excluded.push(PathBuf::from(image));
                applied.removed += 1;
            }
        }
        // Record every move as it happens, so an interrupted apply can be undone.
        std::fs::create_dir_all(&quarantine).map_err(io_err(&quarantine))?;
        let json = serde_json::to_vec_pretty(&moves).map_err(|source| Error::Json {
            path: moves_path.clone(),
            source,
        })?;
        write_atomic(&moves_path, &json)?;
    }
    view.write(&root)?;
    let done = journal.with_extension("jsonl.applied");
    std::fs::rename(journal, &done).map_err(io_err(journal))?;
    Ok(applied)
}

/// Moves every quarantined image back and restores the view from before the review.
/// Returns how many images came back.
pub fn undo_review(root: &Path) -> Result<usize> {
    let root = root.canonicalize().map_err(io_err(root))?;
    let quarantine = quarantine_dir(&root);
    let moves_path = quarantine.join("moves.json");
    let text = std::fs::read_to_string(&moves_path).map_err(io_err(&moves_path))?;
    let moves: Moves = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: moves_path.clone(),
        source,
    })?;
    for image in &moves.moved {
        move_file(&quarantine.join(image), &root.join(image))?;
    }
    let prev = view_path(&root).with_file_name("vista-clean.prev.json");
    if moves.had_view && prev.exists() {
        std::fs::rename(&prev, view_path(&root)).map_err(io_err(&prev))?;
    } else {
        CleanView::undo(&root)?;
    }
    std::fs::rename(&moves_path, quarantine.join("moves.undone.json"))
        .map_err(io_err(&moves_path))?;
    Ok(moves.moved.len())
}
