//! Submissions: Analytics Vidhya's CSV and Kaggle-style class folders.

use std::collections::HashMap;

use vista_eval::{write_av_csv, write_folders};

use crate::preds;

#[test]
fn the_av_csv_holds_class_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.csv");
    write_av_csv(&preds(3, vec![0.1, 0.1, 0.8, 0.9, 0.05, 0.05], None), &path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "image_name,label\nimg0.png,2\nimg1.png,0\n"
    );
}

#[test]
fn folders_get_copies_and_the_sources_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = HashMap::new();
    for i in 0..2 {
        let f = dir.path().join(format!("img{i}.png"));
        std::fs::write(&f, format!("image {i}")).unwrap();
        sources.insert(format!("img{i}.png"), f);
    }
    let p = preds(3, vec![0.1, 0.1, 0.8, 0.9, 0.05, 0.05], None);
    let out = dir.path().join("sub");
    assert_eq!(write_folders(&p, &sources, &out).unwrap(), 2);
    assert_eq!(
        std::fs::read_to_string(out.join("c/img0.png")).unwrap(),
        "image 0"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("a/img1.png")).unwrap(),
        "image 1"
    );
    assert!(out.join("b").is_dir());
    assert!(dir.path().join("img0.png").exists() && dir.path().join("img1.png").exists());
    let err = write_folders(&p, &sources, &out).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
}
