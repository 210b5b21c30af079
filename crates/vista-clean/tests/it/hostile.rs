//! Applying and undoing a review on datasets, journals and quarantine folders built by
//! someone else: every original image stays or comes back byte for byte, and nothing is
//! written outside the dataset and its quarantine.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use vista_clean::{
    Decision, JournalEntry, Review, append_journal, apply_journal, quarantine_dir, read_journal,
    undo_review,
};

use crate::{dataset, manifest};

/// Every entry below `dir` (not following links): files with their bytes, links with
/// their targets.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if m.is_symlink() {
                out.insert(
                    rel,
                    format!("link -> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, format!("{:?}", std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn journal(path: &Path, entries: &[(&str, Decision)]) {
    for (image, decision) in entries {
        append_journal(
            path,
            &JournalEntry {
                image: (*image).into(),
                decision: decision.clone(),
            },
        )
        .unwrap();
    }
}

#[test]
fn apply_acts_only_on_flagged_images_and_never_through_links() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    std::fs::write(root.join("notes.txt"), "my notes").unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious.png"), "precious").unwrap();
    // A link inside the dataset to an image nobody flagged, and one to a file outside.
    symlink(root.join("dog/1.png"), root.join("cat/link.png")).unwrap();
    symlink(outside.join("precious.png"), root.join("cat/out.png")).unwrap();
    symlink(&outside, root.join("linked-dir")).unwrap();
    let before_outside = snapshot(&outside);
    let flags = manifest(
        &root,
        &[
            "cat/1.png",
            "cat/link.png",
            "cat/out.png",
            "linked-dir/precious.png",
        ],
    );
    let j = tmp.path().join("review.jsonl");
    journal(
        &j,
        &[
            ("cat/1.png", Decision::Remove),
            ("cat/link.png", Decision::Remove),
            ("cat/out.png", Decision::Remove),
            ("linked-dir/precious.png", Decision::Remove),
            ("notes.txt", Decision::Remove),
            ("dog/0.png", Decision::Remove),
            ("../outside/precious.png", Decision::Remove),
        ],
    );
    let applied = apply_journal(&root, &flags, &j).unwrap();
    assert_eq!(applied.removed, 1, "{applied:?}");
    assert_eq!(applied.refused.len(), 6, "{applied:?}");
    let q = quarantine_dir(&root.canonicalize().unwrap());
    assert!(q.join("cat/1.png").is_file());
    assert!(root.join("notes.txt").is_file() && root.join("dog/0.png").is_file());
    assert!(root.join("dog/1.png").is_file());
    assert_eq!(snapshot(&outside), before_outside);
    let restored = undo_review(&root).unwrap();
    assert_eq!(restored.restored, 1);
    assert!(root.join("cat/1.png").is_file());
}

#[test]
fn a_shipped_quarantine_record_cannot_move_files_in_or_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let before = snapshot(&root);
    let q = quarantine_dir(&root);
    std::fs::create_dir_all(&q).unwrap();
    for bad in [
        "../../etc/passwd",
        "/etc/passwd",
        "train.csv",
        "cat/../../x.png",
    ] {
        std::fs::write(
            q.join("moves.json"),
            serde_json::json!({"moved": [bad], "had_view": false}).to_string(),
        )
        .unwrap();
        let err = undo_review(&root).unwrap_err().to_string();
        assert!(err.contains("not written by vista"), "{bad}: {err}");
    }
    // A quarantine holding a file whose place in the dataset is taken: nothing replaced.
    std::fs::create_dir_all(q.join("cat")).unwrap();
    std::fs::write(q.join("cat/0.png"), "impostor").unwrap();
    std::fs::write(
        q.join("moves.json"),
        serde_json::json!({"moved": ["cat/0.png"], "had_view": false}).to_string(),
    )
    .unwrap();
    let err = undo_review(&root).unwrap_err().to_string();
    assert!(err.contains("nothing was replaced"), "{err}");
    assert_eq!(snapshot(&root), before);
}

#[test]
fn a_quarantine_folder_that_is_a_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, quarantine_dir(&root)).unwrap();
    let flags = manifest(&root, &["cat/1.png"]);
    let j = tmp.path().join("review.jsonl");
    journal(&j, &[("cat/1.png", Decision::Remove)]);
    let err = apply_journal(&root, &flags, &j).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert!(root.join("cat/1.png").is_file());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_view_file_that_is_a_link_is_not_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    symlink(&victim, root.join("vista-clean.prev.json")).unwrap();
    std::fs::write(root.join("vista-clean.json"), "{}").unwrap();
    let flags = manifest(&root, &["cat/1.png"]);
    let j = tmp.path().join("review.jsonl");
    journal(
        &j,
        &[(
            "cat/1.png",
            Decision::Relabel {
                class: "dog".into(),
            },
        )],
    );
    assert!(apply_journal(&root, &flags, &j).is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}

#[test]
fn interrupted_moves_complete_when_run_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let before = snapshot(&root);
    let flags = manifest(&root, &["cat/0.png", "cat/1.png", "dog/0.png"]);
    let j = tmp.path().join("review.jsonl");
    journal(
        &j,
        &[
            ("cat/0.png", Decision::Remove),
            ("cat/1.png", Decision::Remove),
            ("dog/0.png", Decision::Remove),
        ],
    );
    // The state a crash leaves after recording the second move but before making it:
    // the first image moved, the second recorded only.
    let q = quarantine_dir(&root.canonicalize().unwrap());
    std::fs::create_dir_all(q.join("cat")).unwrap();
    std::fs::rename(root.join("cat/0.png"), q.join("cat/0.png")).unwrap();
    std::fs::write(
        q.join("moves.json"),
        serde_json::json!({"moved": ["cat/0.png", "cat/1.png"], "had_view": false}).to_string(),
    )
    .unwrap();
    let applied = apply_journal(&root, &flags, &j).unwrap();
    assert_eq!(applied.removed, 3, "{applied:?}");
    // An undo interrupted after one image came back completes too.
    std::fs::rename(q.join("dog/0.png"), root.join("dog/0.png")).unwrap();
    let undone = undo_review(&root).unwrap();
    assert_eq!((undone.restored, undone.already_there), (2, 1));
    let mut after = snapshot(&root);
    after.retain(|p, _| !p.starts_with("vista-clean.undone.json"));
    assert_eq!(after, before);
}

#[test]
fn a_torn_journal_line_is_cut_before_the_next_decision() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let j = tmp.path().join("review.jsonl");
    journal(&j, &[("cat/0.png", Decision::Keep)]);
    let mut text = std::fs::read_to_string(&j).unwrap();
    text.push_str("{\"image\":\"cat/1.png\",\"act");
    std::fs::write(&j, &text).unwrap();
    // Opening a session repairs the journal; the next decision then reads back.
    Review::new(manifest(&root, &["cat/0.png", "cat/1.png"]), j.clone()).unwrap();
    journal(&j, &[("cat/1.png", Decision::Remove)]);
    let d = read_journal(&j).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d["cat/1.png"], Decision::Remove);
}

#[test]
fn a_journal_that_is_a_link_is_neither_read_nor_appended_to() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let j = tmp.path().join("review.jsonl");
    symlink(&victim, &j).unwrap();
    assert!(read_journal(&j).is_err());
    let entry = JournalEntry {
        image: "cat/0.png".into(),
        decision: Decision::Keep,
    };
    assert!(append_journal(&j, &entry).is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}
