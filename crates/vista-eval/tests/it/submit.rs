//! Submissions: Analytics Vidhya's CSV and Kaggle-style class folders.

use std::collections::HashMap;

use vista_eval::{Placement, write_av_csv, write_folders};

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
    assert_eq!(
        write_folders(&p, &sources, &out, Placement::Link).unwrap(),
        2
    );
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
    let err = write_folders(&p, &sources, &out, Placement::Link)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
}

/// Every file below `dir` with its bytes, to show that nothing was changed.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn images_with_one_base_name_keep_their_paths_and_the_originals_stay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut sources = HashMap::new();
    for sub in ["x", "y"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
        let f = data.join(sub).join("img.png");
        std::fs::write(&f, format!("image in {sub}")).unwrap();
        sources.insert(format!("{sub}/img.png"), f);
    }
    let before = snapshot(&data);
    let mut p = preds(2, vec![0.9, 0.1, 0.8, 0.2], None);
    p.images = vec!["x/img.png".into(), "y/img.png".into()];
    for placement in [Placement::Link, Placement::Copy] {
        let out = dir.path().join(format!("sub-{placement:?}"));
        assert_eq!(write_folders(&p, &sources, &out, placement).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(out.join("a/x/img.png")).unwrap(),
            "image in x"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("a/y/img.png")).unwrap(),
            "image in y"
        );
    }
    assert_eq!(snapshot(&data), before);
}

#[test]
fn a_duplicate_row_or_a_hostile_name_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("img0.png");
    std::fs::write(&f, "original").unwrap();
    let sources: HashMap<_, _> = [("img0.png".to_string(), f.clone())].into();
    let mut p = preds(2, vec![0.9, 0.1, 0.8, 0.2], None);
    p.images = vec!["img0.png".into(), "img0.png".into()];
    let out = dir.path().join("sub");
    let err = write_folders(&p, &sources, &out, Placement::Link).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    for class in ["../..", "/abs", "a/b", "nul\0", ".."] {
        let mut p = preds(2, vec![0.9, 0.1], None);
        p.images = vec!["img0.png".into()];
        p.classes[0] = class.into();
        let err = write_folders(&p, &sources, &out, Placement::Link).unwrap_err();
        assert!(err.to_string().contains("class name"), "{class}: {err}");
    }
    for name in ["../img0.png", "/etc/passwd"] {
        let sources: HashMap<_, _> = [(name.to_string(), f.clone())].into();
        let mut p = preds(2, vec![0.9, 0.1], None);
        p.images = vec![name.into()];
        assert!(write_folders(&p, &sources, &out, Placement::Link).is_err());
    }
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "original");
    assert!(!out.exists());
    // Nothing but the image is left beside it: no temporary folder.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_prediction_file_listing_an_image_twice_or_a_bad_class_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    std::fs::write(
        &path,
        "image,prediction,a,b\nimg.png,a,0.9,0.1\nimg.png,b,0.2,0.8\n",
    )
    .unwrap();
    let err = vista_eval::Predictions::read_csv(&path).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    std::fs::write(&path, "image,prediction,a,../b\nimg.png,a,0.9,0.1\n").unwrap();
    let err = vista_eval::Predictions::read_csv(&path).unwrap_err();
    assert!(err.to_string().contains("class name"), "{err}");
}
