//! Layout detection, loading and validation.

use std::path::Path;

use vista_data::{
    Error, Layout, LoadOptions, OnBadImage, ProblemKind, detect_layout, fashion_mnist, load,
};

use crate::{data_dir, fixtures, quiet};

fn codes(report: &vista_data::ProblemReport) -> Vec<(String, &'static str)> {
    report
        .problems
        .iter()
        .map(|p| {
            (
                p.path.file_name().unwrap().to_string_lossy().into_owned(),
                p.kind.code(),
            )
        })
        .collect()
}

#[test]
fn kaggle_layout_is_detected_and_loaded() {
    let root = fixtures().join("kaggle");
    assert_eq!(detect_layout(&root).unwrap(), Layout::KaggleIntel);
    let opts = LoadOptions {
        include_unlabelled: true,
        ..quiet()
    };
    let loaded = load(&root, &opts).unwrap();
    let ds = &loaded.dataset;
    assert_eq!(ds.classes.classes, vista_data::INTEL_CLASSES);
    assert_eq!(
        (ds.train.len(), ds.test.len(), ds.unlabelled.len()),
        (12, 12, 3)
    );
    assert_eq!(ds.class_counts(&ds.train), vec![2; 6]);
    assert_eq!(loaded.train.len(), 12);
    assert_eq!(loaded.unlabelled.len(), 3);
    assert!(loaded.report.is_empty());
    let forest = ds
        .train
        .iter()
        .find(|s| s.path.to_string_lossy().contains("/forest/"))
        .unwrap();
    assert_eq!(forest.label, 1);
}

#[test]
fn analytics_vidhya_layout_is_detected_and_loaded() {
    let root = fixtures().join("av");
    assert_eq!(detect_layout(&root).unwrap(), Layout::AnalyticsVidhya);
    let loaded = load(
        &root,
        &LoadOptions {
            include_unlabelled: true,
            ..quiet()
        },
    )
    .unwrap();
    let ds = &loaded.dataset;
    assert_eq!(ds.classes.name(5), Some("street"));
    assert_eq!(ds.train.len(), 12);
    for s in &ds.train {
        let id: u32 = s
            .path
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            s.label,
            id % 6,
            "{} has the label of its train.csv row",
            s.path.display()
        );
    }
    assert_eq!(ds.unlabelled.len(), 3);
    assert_eq!(loaded.unlabelled.len(), 3);
}

#[test]
fn image_folder_names_every_problem_and_skips_them_on_request() {
    let root = fixtures().join("bad-folder");
    assert_eq!(detect_layout(&root).unwrap(), Layout::ImageFolder);
    let loaded = load(
        &root,
        &LoadOptions {
            on_bad_image: OnBadImage::Skip,
            ..quiet()
        },
    )
    .unwrap();
    let mut got = codes(&loaded.report);
    got.sort();
    let want = [
        ("empty.png", "empty_file"),
        ("notes.jpg", "not_an_image"),
        ("owl", "empty_class"),
        ("truncated.jpg", "corrupt"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b)));
    // good1.jpg, rgba.png, cmyk.jpg, good2.jpg and gray16.png remain.
    assert_eq!(loaded.train.len(), 5);
    assert_eq!(loaded.dataset.train.len(), 5);
    assert_eq!(loaded.dataset.classes.classes, ["cat", "dog", "owl"]);

    match load(&root, &quiet()) {
        Err(Error::BadImages { report }) => assert_eq!(report.problems.len(), 4),
        other => panic!("policy `error` must fail, got {other:?}"),
    }
}

#[test]
fn cmyk_jpeg_decodes_like_pil() {
    let ours =
        vista_data::decode_rgb(&fixtures().join("bad-folder/dog/cmyk.jpg"), 1 << 20).unwrap();
    let pil = image::open(fixtures().join("cmyk.expected.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(ours.dimensions(), pil.dimensions());
    let worst = ours
        .as_raw()
        .iter()
        .zip(pil.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    // Two JPEG decoders (IDCT and colour conversion rounding) agree within a few levels.
    assert!(
        worst <= 8,
        "CMYK conversion differs from PIL's by {worst} levels"
    );
}

#[test]
fn path_csv_reports_missing_unknown_and_duplicate_rows() {
    let csv = fixtures().join("bad-csv/labels.csv");
    assert_eq!(detect_layout(&csv).unwrap(), Layout::PathCsv);
    let loaded = load(
        &csv,
        &LoadOptions {
            on_bad_image: OnBadImage::Skip,
            ..quiet()
        },
    )
    .unwrap();
    let kinds: Vec<_> = loaded.report.problems.iter().map(|p| &p.kind).collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, ProblemKind::MissingFile { row: 3, .. })),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(
            |k| matches!(k, ProblemKind::UnknownLabel { row: 4, label, .. } if label == "horse")
        )
    );
    assert!(kinds.iter().any(|k| matches!(
        k,
        ProblemKind::Duplicate {
            row: 5,
            first_row: 1,
            ..
        }
    )));
    assert_eq!(loaded.dataset.train.len(), 2);
}

#[test]
fn unknown_layout_says_what_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), "hi").unwrap();
    let err = detect_layout(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("no known dataset layout") && err.contains("seg_train"),
        "{err}"
    );
}

#[test]
fn reports_are_written_as_json_and_csv() {
    let loaded = load(
        &fixtures().join("bad-folder"),
        &LoadOptions {
            on_bad_image: OnBadImage::Skip,
            ..quiet()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    loaded
        .report
        .save(&dir.path().join("problems.json"))
        .unwrap();
    loaded
        .report
        .save(&dir.path().join("problems.csv"))
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("problems.json")).unwrap()).unwrap();
    assert_eq!(json["problems"].as_array().unwrap().len(), 4);
    let csv = std::fs::read_to_string(dir.path().join("problems.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.contains("truncated.jpg,corrupt,"));
}

#[test]
fn fashion_mnist_materializes_as_an_analytics_vidhya_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fmnist");
    let opts = fashion_mnist::MaterializeOptions {
        train_limit: Some(40),
        test_limit: Some(10),
        observer: Default::default(),
    };
    fashion_mnist::materialize(&data_dir().join("fashion-mnist"), &out, &opts).unwrap();
    assert_eq!(detect_layout(&out).unwrap(), Layout::AnalyticsVidhya);
    let loaded = load(
        &out,
        &LoadOptions {
            include_unlabelled: true,
            ..quiet()
        },
    )
    .unwrap();
    assert_eq!(loaded.dataset.classes.classes, fashion_mnist::CLASSES);
    assert_eq!((loaded.train.len(), loaded.unlabelled.len()), (40, 10));
    assert_eq!(loaded.train.dimensions(0), (28, 28));
    // The first training image of Fashion-MNIST is an ankle boot (label 9).
    assert_eq!(loaded.dataset.train[0].label, 9);
    let answers = std::fs::read_to_string(out.join("answers/test_labels.csv")).unwrap();
    assert_eq!(answers.lines().count(), 11);
    // A second call finds the folder and does nothing.
    fashion_mnist::materialize(Path::new("/nonexistent"), &out, &opts).unwrap();
}

#[test]
fn idx_errors_name_the_file() {
    let err = fashion_mnist::parse_idx_labels(&[0, 0, 8, 3, 0, 0, 0, 1, 5], Path::new("x.idx"))
        .unwrap_err();
    assert!(
        err.to_string().starts_with("x.idx: not an IDX file"),
        "{err}"
    );
    let ok =
        fashion_mnist::parse_idx_labels(&[0, 0, 8, 1, 0, 0, 0, 2, 5, 7], Path::new("y")).unwrap();
    assert_eq!(ok, [5, 7]);
}

#[test]
fn extra_images_take_the_datasets_class_ids_and_a_foreign_class_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = tmp.path().join("extra");
    for (class, n) in [("cat", 2), ("dog", 1)] {
        std::fs::create_dir_all(extra.join(class)).unwrap();
        for i in 0..n {
            image::RgbImage::new(8, 8)
                .save(extra.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    // The dataset numbers its classes in another order than the folder sorts them.
    let classes = vista_data::ClassMap::new(vec!["dog".into(), "cat".into()]);
    let (images, mut labels, report) = vista_data::load_extra(&extra, &classes, &quiet()).unwrap();
    labels.sort_unstable();
    assert_eq!(
        (images.len(), labels, report.problems.len()),
        (3, vec![0, 1, 1], 0)
    );
    let only_dogs = vista_data::ClassMap::new(vec!["dog".into()]);
    match vista_data::load_extra(&extra, &only_dogs, &quiet()) {
        Err(vista_data::Error::ForeignClass { class, .. }) => assert_eq!(class, "cat"),
        other => panic!("expected a foreign class, got {:?}", other.map(|r| r.1)),
    }
}

/// Big photos are held at the size a run needs, and a check holds none of them.
#[test]
fn big_images_are_decoded_down_to_max_side_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    for (class, (w, h)) in [("wide", (1200u32, 800u32)), ("tall", (600, 900))] {
        let folder = dir.path().join(class);
        std::fs::create_dir_all(&folder).unwrap();
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, 7])
        });
        img.save(folder.join("a.jpg")).unwrap();
    }
    let bounded = vista_data::load(
        dir.path(),
        &vista_data::LoadOptions {
            max_side: Some(74),
            ..crate::quiet()
        },
    )
    .unwrap();
    let dims: Vec<_> = bounded.train.iter().map(|i| i.dimensions()).collect();
    // Classes sort as tall, wide; each keeps its aspect ratio, shorter side 74.
    assert_eq!(dims, [(74, 111), (111, 74)]);
    assert_eq!(bounded.original_sizes, [(600, 900), (1200, 800)]);
    assert_eq!(vista_data::bounded_size(1200, 800, Some(74)), (111, 74));
    assert_eq!(vista_data::bounded_size(60, 80, Some(74)), (60, 80));

    let checked = vista_data::load(
        dir.path(),
        &vista_data::LoadOptions {
            keep_images: false,
            ..crate::quiet()
        },
    )
    .unwrap();
    assert_eq!(checked.cache_bytes(), 0);
    assert_eq!(checked.original_sizes, [(600, 900), (1200, 800)]);
}

/// A rare class with no validation image is the data, not a problem.
#[test]
fn a_validation_folder_may_lack_a_class() {
    let dir = tempfile::tempdir().unwrap();
    for (split, class) in [("train", "cat"), ("train", "owl"), ("valid", "cat")] {
        let folder = dir.path().join(split).join(class);
        std::fs::create_dir_all(&folder).unwrap();
        image::RgbImage::new(4, 4)
            .save(folder.join("a.png"))
            .unwrap();
    }
    let loaded = vista_data::load(dir.path(), &vista_data::LoadOptions::default()).unwrap();
    assert!(loaded.report.is_empty(), "{}", loaded.report);
    assert_eq!(loaded.dataset.layout, vista_data::Layout::SplitFolders);
    assert_eq!((loaded.train.len(), loaded.valid.len()), (2, 1));
}
