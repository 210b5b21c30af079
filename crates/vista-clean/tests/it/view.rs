//! Manifests, cleaned views honoured by the loaders, undo, and path containment.

use std::path::PathBuf;

use vista_clean::{Reason, resolve_inside};
use vista_data::CleanView;

use crate::{dataset, manifest};

#[test]
fn a_manifest_reads_back_and_draws_its_contact_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let m = manifest(&root, &["cat/1.png", "dog/0.png"]);
    let json = m.write(&tmp.path().join("out")).unwrap();
    assert_eq!(vista_clean::Manifest::read(&json).unwrap(), m);
    let csv = std::fs::read_to_string(tmp.path().join("out/flags.csv")).unwrap();
    assert_eq!(
        csv.lines().nth(1),
        Some("cat/1.png,cat,dog,0.9500,likely_mislabelled")
    );
    let sheets = vista_clean::contact_sheets(&m, &tmp.path().join("out"), 10).unwrap();
    assert_eq!(sheets.len(), 1);
    assert!(image::open(&sheets[0]).is_ok());
}

#[test]
fn the_loaders_honour_a_cleaned_view_and_undo_restores_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let before = vista_data::open(&root).unwrap();
    assert_eq!(before.train.len(), 5);
    let mut view = vista_clean::manifest_view(
        &manifest(&root, &["cat/1.png"]),
        &[Reason::LikelyMislabelled],
        None,
    );
    view.relabelled
        .insert(PathBuf::from("dog/0.png"), "owl".into());
    view.write(&root).unwrap();
    let after = vista_data::open(&root).unwrap();
    assert_eq!(after.train.len(), 4);
    assert!(!after.train.iter().any(|s| s.path.ends_with("cat/1.png")));
    let relabelled = after
        .train
        .iter()
        .find(|s| s.path.ends_with("dog/0.png"))
        .unwrap();
    assert_eq!(relabelled.label, 2);
    assert!(root.join("cat/1.png").is_file(), "no image is touched");
    assert!(CleanView::undo(&root).unwrap());
    assert_eq!(vista_data::open(&root).unwrap().train, before.train);

    // A relabelling to a class the dataset lacks is an error naming both.
    let mut bad = CleanView::default();
    bad.relabelled
        .insert(PathBuf::from("cat/0.png"), "zebra".into());
    bad.write(&root).unwrap();
    let err = vista_data::open(&root).unwrap_err().to_string();
    assert!(
        err.contains("vista-clean.json") && err.contains("zebra"),
        "{err}"
    );
}

#[test]
fn only_files_inside_the_root_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    std::fs::write(tmp.path().join("secret.png"), b"secret").unwrap();
    let root = root.canonicalize().unwrap();
    assert!(resolve_inside(&root, "cat/0.png").is_some());
    assert!(resolve_inside(&root, "../secret.png").is_none());
    assert!(resolve_inside(&root, "cat/../../secret.png").is_none());
    assert!(resolve_inside(&root, tmp.path().join("secret.png").to_str().unwrap()).is_none());
    assert!(resolve_inside(&root, "cat/missing.png").is_none());
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(tmp.path().join("secret.png"), root.join("cat/link.png"))
            .unwrap();
        assert!(
            resolve_inside(&root, "cat/link.png").is_none(),
            "a symlink out is refused"
        );
    }
}
