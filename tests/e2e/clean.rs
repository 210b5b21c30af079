//! `vista clean detect|apply|undo` and `vista review --apply|--undo` on the small
//! synthetic dataset, with labels flipped on purpose.

use crate::train::write_dataset;
use crate::{text, vista};

#[test]
fn detection_finds_flipped_labels_and_cleaning_is_undoable() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = t.join("data");
    write_dataset(&data, 40);
    let d = data.to_str().unwrap();
    let out = t.join("clean");
    let o = out.to_str().unwrap();
    let run = vista(
        &[
            "clean",
            "detect",
            "--data",
            d,
            "--out",
            o,
            "--folds",
            "3",
            "--flip-labels",
            "0.1",
            "--sizes",
            "16",
            "--epochs",
            "8",
            "--lr",
            "0.01",
            "--width",
            "0.0625",
            "--batch-size",
            "16",
            "--seed",
            "3",
            "--no-augment",
            "--mixup",
            "0",
        ],
        t,
    );
    let (stdout, stderr) = text(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("flipped labels found (likely_mislabelled)"),
        "{stdout}"
    );
    for f in [
        "flags.json",
        "flags.csv",
        "predictions.csv",
        "detection.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let det: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("detection.json")).unwrap())
            .unwrap();
    let recall = det["likely_mislabelled"]["recall"].as_f64().unwrap();
    let precision = det["likely_mislabelled"]["precision"].as_f64().unwrap();
    assert!(recall >= 0.5 && precision >= 0.5, "{det}");
    let flagged = det["likely_mislabelled"]["flagged"].as_u64().unwrap() as usize;

    // Apply leaves the flagged images out of every listing; undo brings them back.
    let count = || {
        let out = vista(&["data", "check", d], t);
        let s = text(&out).0;
        let total = s
            .lines()
            .find(|l| l.trim_start().starts_with("total"))
            .unwrap()
            .to_string();
        total
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!(count(), 120);
    let applied = vista(
        &["clean", "apply", out.join("flags.json").to_str().unwrap()],
        t,
    );
    assert!(applied.status.success(), "{:?}", text(&applied));
    assert_eq!(count(), 120 - flagged);
    assert_eq!(
        std::fs::read_dir(data.join("seg_train/square"))
            .unwrap()
            .count(),
        40,
        "no file moves"
    );
    assert!(vista(&["clean", "undo", "--data", d], t).status.success());
    assert_eq!(count(), 120);

    // The review's journal, applied from the command line, then undone.
    let flags: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("flags.json")).unwrap()).unwrap();
    let first = flags["flags"][0]["image"].as_str().unwrap().to_string();
    std::fs::write(
        out.join("review.jsonl"),
        format!("{{\"image\":\"{first}\",\"action\":\"remove\"}}\n"),
    )
    .unwrap();
    let manifest = out.join("flags.json");
    let m = manifest.to_str().unwrap();
    let applied = vista(&["review", d, "--manifest", m, "--apply"], t);
    assert!(applied.status.success(), "{:?}", text(&applied));
    assert!(!data.join(&first).exists());
    assert!(t.join("data.quarantine").join(&first).is_file());
    assert_eq!(count(), 119);
    let undone = vista(&["review", d, "--undo"], t);
    assert!(undone.status.success(), "{:?}", text(&undone));
    assert!(data.join(&first).is_file());
    assert_eq!(count(), 120);
}
