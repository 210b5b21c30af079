//! Prediction files: written and read back, bad files named with their line.

use std::collections::HashMap;

use vista_eval::{Predictions, read_labels};

use crate::preds;

#[test]
fn a_prediction_file_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let mut p = preds(3, vec![0.7, 0.2, 0.1, 0.1, 0.1, 0.8], Some(vec![0, 1]));
    p.images[1] = "with,comma.png".into();
    p.write_csv(&path).unwrap();
    let back = Predictions::read_csv(&path).unwrap();
    assert_eq!(back, p);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("image,label,prediction,a,b,c\n"), "{text}");
}

#[test]
fn rank_columns_name_the_next_likeliest_classes_and_readers_skip_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let p = preds(3, vec![0.2, 0.5, 0.3, 0.1, 0.1, 0.8], Some(vec![1, 2]));
    p.write_csv_top(&path, 3).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "image,label,prediction,prediction/2,prediction/3,a,b,c"
    );
    // Ties go to the lower class id.
    assert!(lines[1].contains(",b,b,c,a,"), "{text}");
    assert!(lines[2].contains(",c,c,a,b,"), "{text}");
    assert_eq!(Predictions::read_csv(&path).unwrap(), p);
    // Asking for more ranks than classes gives every class once.
    p.write_csv_top(&path, 10).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("image,label,prediction,prediction/2,prediction/3,a,"));
    assert_eq!(Predictions::read_csv(&path).unwrap(), p);
}

#[test]
fn a_bad_prediction_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "image,prediction,a,b\nx.png,a,0.5,0.5\ny.png,q,0.5,0.5\n",
    )
    .unwrap();
    let err = Predictions::read_csv(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.csv line 3") && err.contains("unknown class `q`"),
        "{err}"
    );
    std::fs::write(&path, "name,whatever\n").unwrap();
    let err = Predictions::read_csv(&path).unwrap_err().to_string();
    assert!(err.contains("bad.csv line 1"), "{err}");
    std::fs::write(&path, "image,prediction,a,b\nx.png,a,0.5,oops\n").unwrap();
    let err = Predictions::read_csv(&path).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("oops"), "{err}");
}

#[test]
fn labels_come_as_ids_or_names_and_attach_to_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labels.csv");
    std::fs::write(&path, "image_name,label\nimg0.png,2\nimg1.png,b\n").unwrap();
    let classes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let labels = read_labels(&path, &classes).unwrap();
    assert_eq!(
        labels,
        HashMap::from([("img0.png".into(), 2), ("img1.png".into(), 1)])
    );
    let mut p = preds(3, vec![0.7, 0.2, 0.1, 0.1, 0.1, 0.8], None);
    assert_eq!(p.attach_labels(&labels).unwrap(), 2);
    assert_eq!(p.labels, Some(vec![2, 1]));
    std::fs::write(&path, "image_name,label\nimg0.png,7\n").unwrap();
    let err = read_labels(&path, &classes).unwrap_err().to_string();
    assert!(
        err.contains("labels.csv line 2") && err.contains("`7`"),
        "{err}"
    );
}
