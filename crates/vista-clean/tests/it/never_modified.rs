//! The promise that a user's images are never modified, as a property: on generated
//! datasets with colliding base names, links in and out of the root, hard links, and
//! quarantine records and views shipped by someone else, `submit --format folders`,
//! `review --apply` and `review --undo` leave every original image's bytes as they
//! were (or restore them exactly), and create or change nothing outside the dataset,
//! its quarantine and the submission folder.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use vista_clean::{Decision, JournalEntry, append_journal, apply_journal, undo_review};
use vista_eval::{Placement, Predictions, write_folders};

use crate::hostile::snapshot;
use crate::manifest;

#[derive(Debug, Clone)]
struct Tree {
    /// (class folder, base name) of each image; base names repeat across folders.
    images: Vec<(usize, usize)>,
    /// Images that are links: (link's index in `images`, target image index).
    links: Vec<(usize, usize)>,
    /// An image hard-linked under a second name.
    hard_link: Option<usize>,
    /// Ship a quarantine record naming these (possibly hostile) paths.
    shipped_moves: Vec<String>,
    /// Ship a view file.
    shipped_view: bool,
    /// The journal's decisions: (image index, remove?) over flagged and unflagged images.
    decisions: Vec<(usize, bool)>,
    /// Images flagged by the manifest.
    flagged: Vec<usize>,
}

const CLASSES: [&str; 3] = ["cat", "dog", "owl"];

fn tree() -> impl Strategy<Value = Tree> {
    (2usize..8)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec((0usize..3, 0usize..3), n),
                proptest::collection::vec((0..n, 0..n), 0..3),
                proptest::option::of(0..n),
                proptest::collection::vec(
                    prop_oneof![
                        Just("../outside/victim.png".to_string()),
                        Just("/tmp/x.png".to_string()),
                        Just("cat/0.png".to_string()),
                        Just("notes.txt".to_string()),
                    ],
                    0..3,
                ),
                any::<bool>(),
                proptest::collection::vec((0..n + 2, any::<bool>()), 0..8),
                proptest::collection::vec(0..n + 2, 0..6),
            )
        })
        .prop_map(
            |(images, links, hard_link, shipped_moves, shipped_view, decisions, flagged)| Tree {
                images,
                links,
                hard_link,
                shipped_moves,
                shipped_view,
                decisions,
                flagged,
            },
        )
}

/// The relative path of image `i`; indexes past the images name other files.
fn rel(t: &Tree, i: usize) -> String {
    match t.images.get(i) {
        Some(&(c, b)) => format!("{}/{b}.png", CLASSES[c]),
        None if i == t.images.len() => "notes.txt".into(),
        None => "../outside/victim.png".into(),
    }
}

fn build(t: &Tree, root: &Path, outside: &Path) {
    std::fs::create_dir_all(outside).unwrap();
    std::fs::write(outside.join("victim.png"), "outside").unwrap();
    for c in CLASSES {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    std::fs::write(root.join("notes.txt"), "notes").unwrap();
    for (i, _) in t.images.iter().enumerate() {
        let p = root.join(rel(t, i));
        if !p.exists() {
            std::fs::write(&p, format!("image {i}")).unwrap();
        }
    }
    for &(l, target) in &t.links {
        let p = root.join(format!("{}/link{l}.png", CLASSES[t.images[l].0]));
        let _ = symlink(root.join(rel(t, target)), &p);
    }
    let _ = symlink(outside.join("victim.png"), root.join("owl/out.png"));
    if let Some(h) = t.hard_link {
        let _ = std::fs::hard_link(root.join(rel(t, h)), root.join("owl/hard.png"));
    }
    if t.shipped_view {
        std::fs::write(
            root.join("vista-clean.json"),
            "{\"excluded\": [\"notes.txt\"]}",
        )
        .unwrap();
    }
    if !t.shipped_moves.is_empty() {
        let q = vista_clean::quarantine_dir(root);
        std::fs::create_dir_all(&q).unwrap();
        std::fs::write(
            q.join("moves.json"),
            serde_json::json!({"moved": t.shipped_moves, "had_view": false}).to_string(),
        )
        .unwrap();
    }
}

/// The user's files: everything in the dataset but vista's own view files.
fn originals(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut s = snapshot(root);
    s.retain(|p, _| !p.to_string_lossy().starts_with("vista-clean"));
    s
}

fn check(t: &Tree) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    let outside = tmp.path().join("outside");
    build(t, &root, &outside);
    let before = originals(&root);
    let before_outside = snapshot(&outside);
    let top = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };

    // A submission of every image (colliding base names included), twice listed when
    // the decisions say so.
    let sources: HashMap<String, PathBuf> = (0..t.images.len())
        .map(|i| (rel(t, i), root.join(rel(t, i))))
        .collect();
    let mut names: Vec<String> = sources.keys().cloned().collect();
    names.sort();
    if t.shipped_view {
        names.push(names[0].clone());
    }
    let k = CLASSES.len();
    let probs: Vec<f32> = (0..names.len() * k).map(|i| (i % 5) as f32).collect();
    let preds = Predictions::from_probs(CLASSES.map(String::from).to_vec(), names, None, probs);
    let out = tmp.path().join("submission");
    let _ = write_folders(&preds, &sources, &out, Placement::Link);
    prop_assert_eq!(&originals(&root), &before);

    // Apply a journal of decisions, then undo it.
    let flagged: Vec<String> = t.flagged.iter().map(|&i| rel(t, i)).collect();
    let flagged: Vec<&str> = flagged.iter().map(String::as_str).collect();
    let m = manifest(&root, &flagged);
    let journal = tmp.path().join("review.jsonl");
    for &(i, remove) in &t.decisions {
        let decision = if remove {
            Decision::Remove
        } else {
            Decision::Relabel {
                class: "dog".into(),
            }
        };
        append_journal(
            &journal,
            &JournalEntry {
                image: rel(t, i),
                decision,
            },
        )
        .unwrap();
    }
    if apply_journal(&root, &m, &journal).is_ok() {
        let _ = undo_review(&root);
    }
    if t.shipped_moves.is_empty() {
        // Without a record from elsewhere, undo restores the dataset exactly.
        prop_assert_eq!(&originals(&root), &before);
    } else {
        // With one, nothing is ever lost: every original is in place or quarantined.
        let q = vista_clean::quarantine_dir(&root.canonicalize().unwrap());
        let mut now = originals(&root);
        for (p, v) in snapshot(&q) {
            now.entry(p).or_insert(v);
        }
        for (p, v) in &before {
            prop_assert_eq!(now.get(p), Some(v), "{} lost", p.display());
        }
    }
    prop_assert_eq!(&snapshot(&outside), &before_outside);
    for name in top(tmp.path()) {
        let name = name.to_string_lossy().into_owned();
        prop_assert!(
            [
                "data",
                "data.quarantine",
                "outside",
                "submission",
                "review.jsonl",
                "review.jsonl.applied"
            ]
            .contains(&name.as_str()),
            "unexpected {}",
            name
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(15),
        ..ProptestConfig::default()
    })]
    #[test]
    fn a_users_images_are_never_modified(t in tree()) {
        check(&t)?;
    }
}
