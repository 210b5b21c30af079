//! Hostile and merely odd datasets, built in temporary folders: every bad file, folder or
//! row is one named problem, nothing panics, nothing is read whole before its size is
//! known, and nothing outside the dataset's folder is read.

use std::ffi::OsStr;
use std::io::Cursor;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::{ImageFormat, RgbImage};
use vista_data::{
    CsvColumns, Error, LoadOptions, OnBadImage, Problem, ProblemKind, ProblemReport, load, open,
    parse_dataset_csv,
};

use crate::quiet;

fn skip() -> LoadOptions {
    LoadOptions {
        on_bad_image: OnBadImage::Skip,
        include_unlabelled: true,
        ..quiet()
    }
}

fn encoded(format: ImageFormat, seed: u8) -> Vec<u8> {
    let img = RgbImage::from_fn(48, 32, |x, y| {
        image::Rgb([(x * 5) as u8 ^ seed, (y * 7) as u8, seed.wrapping_mul(31)])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

fn png(seed: u8) -> Vec<u8> {
    encoded(ImageFormat::Png, seed)
}

fn write(path: impl AsRef<Path>, bytes: &[u8]) {
    let path = path.as_ref();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A path component with the given raw bytes (not UTF-8 where the test needs it).
fn raw(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// The problems of `report` about `path`, by code.
fn codes_at(report: &[Problem], path: &Path) -> Vec<&'static str> {
    report
        .iter()
        .filter(|p| p.path == path)
        .map(|p| p.kind.code())
        .collect()
}

fn problem_at<'a>(problems: &'a [Problem], path: &Path) -> &'a ProblemKind {
    let found: Vec<_> = problems.iter().filter(|p| p.path == path).collect();
    assert_eq!(
        found.len(),
        1,
        "one problem at {}: {problems:#?}",
        path.display()
    );
    &found[0].kind
}

#[test]
fn a_sparse_8_gib_image_is_reported_as_too_large_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("cat/ok.png"), &png(1));
    let huge = root.join("cat/huge.png");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let started = Instant::now();
    let loaded = load(root, &skip()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        problem_at(&loaded.report.problems, &huge),
        &ProblemKind::FileTooLarge {
            bytes: 8 << 30,
            max_bytes: vista_data::MAX_IMAGE_FILE_BYTES
        }
    );
    assert_eq!(loaded.train.len(), 1);
}

/// The first half of a JPEG's entropy-coded data (after its start-of-scan header).
fn half_scan(jpeg: &[u8]) -> &[u8] {
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let start = sos + 2 + usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    assert_eq!(&jpeg[jpeg.len() - 2..], [0xFF, 0xD9]);
    &jpeg[..start + (jpeg.len() - 2 - start) / 2]
}

#[test]
fn jpegs_are_judged_by_their_data_not_by_their_last_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let jpeg = encoded(ImageFormat::Jpeg, 9);
    // Half of the image data with an end-of-image marker glued on.
    let mut glued = half_scan(&jpeg).to_vec();
    glued.extend_from_slice(&[0xFF, 0xD9]);
    // A complete file followed by a 200-byte trailer, as phones write.
    let mut trailed = jpeg.clone();
    trailed.extend((0..200u32).map(|i| (i * 13 % 256) as u8));
    write(root.join("cat/glued.jpg"), &glued);
    write(root.join("cat/trailed.jpg"), &trailed);
    write(root.join("cat/plain.jpg"), &jpeg);
    let loaded = load(root, &skip()).unwrap();
    assert!(matches!(
        problem_at(&loaded.report.problems, &root.join("cat/glued.jpg")),
        ProblemKind::Corrupt { .. }
    ));
    assert_eq!(loaded.report.problems.len(), 1, "{}", loaded.report);
    assert_eq!(loaded.train.len(), 2);
    assert_eq!(
        loaded.train.get(0),
        loaded.train.get(1),
        "the trailer changes nothing"
    );
}

#[test]
fn names_that_are_not_utf8_keep_their_bytes_or_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A Latin-1 file name in a good class folder is read under its own name.
    let latin1 = root.join("cat").join(raw(b"caf\xe9.png"));
    write(&latin1, &png(2));
    write(root.join("cat/plain.png"), &png(3));
    // A Latin-1 class folder cannot be a class, and says so instead of vanishing.
    let folder = root.join(raw(b"chien-\xe9t\xe9"));
    write(folder.join("a.png"), &png(4));
    write(folder.join("b.png"), &png(5));
    let loaded = load(root, &skip()).unwrap();
    let ds = &loaded.dataset;
    assert_eq!(ds.classes.classes, ["cat"]);
    assert!(ds.train.iter().any(|s| s.path == latin1), "{:?}", ds.train);
    assert_eq!(loaded.train.len(), 2);
    match problem_at(&loaded.report.problems, &folder) {
        ProblemKind::BadClassFolder { name, reason } => {
            assert_eq!(name, "chien-\u{fffd}t\u{fffd}");
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The report is still written, with the name shown as well as text can.
    let json = dir.path().join("problems.json");
    loaded.report.save(&json).unwrap();
    assert!(std::fs::read_to_string(&json).unwrap().contains("chien-"));
}

#[test]
fn class_folders_whose_names_cannot_be_classes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("cat/a.png"), &png(1));
    let bell = root.join("ca\u{7}t");
    let escape = root.join("red\u{1b}[31m");
    let spaced = root.join("dog ");
    let long = root.join("x".repeat(vista_data::MAX_CLASS_NAME_BYTES + 1));
    for folder in [&bell, &escape, &spaced, &long] {
        write(folder.join("a.png"), &png(2));
    }
    let loaded = load(root, &skip()).unwrap();
    assert_eq!(loaded.dataset.classes.classes, ["cat"]);
    for folder in [&bell, &escape, &spaced, &long] {
        assert!(
            matches!(
                problem_at(&loaded.report.problems, folder),
                ProblemKind::BadClassFolder { .. }
            ),
            "{}",
            folder.display()
        );
    }
    // A report printed to a terminal shows control characters escaped, never raw.
    let text = loaded.report.to_string();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(text.contains("red\\u{1b}[31m"), "{text}");
}

#[test]
fn files_vista_does_not_read_are_listed_and_its_own_files_and_litter_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("cat/a.png"), &png(1));
    write(root.join("cat/b.heic"), b"\0\0\0\x18ftypheic");
    write(root.join("cat/c.webp"), b"RIFF....WEBPVP8 ");
    write(root.join("cat/notes.txt"), b"a cat");
    write(root.join("cat/LICENSE"), b"CC-BY");
    write(root.join("cat/more/c.png"), &png(2));
    write(root.join("stray.jpg"), &encoded(ImageFormat::Jpeg, 3));
    // Litter and vista's own files: skipped without a word.
    write(root.join("cat/.DS_Store"), b"\0\0\0\x01Bud1");
    write(root.join("cat/Thumbs.db"), b"\xd0\xcf\x11\xe0");
    write(root.join("cat/desktop.ini"), b"[.ShellClassInfo]");
    write(
        root.join("cat/.ipynb_checkpoints/a-checkpoint.png"),
        &png(1),
    );
    write(root.join("__MACOSX/cat/._a.png"), b"\0\x05\x16\x07");
    write(root.join(".DS_Store"), b"\0\0\0\x01Bud1");
    write(root.join("classes.txt"), b"cat\n");
    write(root.join("vista-clean.prev.json"), b"{}");
    write(root.join("synthetic.json"), b"{}");
    let loaded = load(root, &skip()).unwrap();
    let report = &loaded.report.problems;
    assert_eq!(
        problem_at(report, &root.join("cat/b.heic")),
        &ProblemKind::UnsupportedFormat {
            extension: "heic".into()
        }
    );
    // WebP is read: a broken one is a problem of its content.
    assert!(
        matches!(
            problem_at(report, &root.join("cat/c.webp")),
            ProblemKind::Corrupt { .. } | ProblemKind::NotAnImage
        ),
        "{report:?}"
    );
    assert_eq!(
        problem_at(report, &root.join("cat/notes.txt")),
        &ProblemKind::UnsupportedFormat {
            extension: "txt".into()
        }
    );
    assert_eq!(
        problem_at(report, &root.join("cat/LICENSE")),
        &ProblemKind::UnsupportedFormat {
            extension: String::new()
        }
    );
    assert_eq!(
        problem_at(report, &root.join("cat/more")),
        &ProblemKind::Unplaced
    );
    assert_eq!(
        problem_at(report, &root.join("stray.jpg")),
        &ProblemKind::Unplaced
    );
    assert_eq!(report.len(), 6, "{}", loaded.report);
    assert_eq!(loaded.dataset.classes.classes, ["cat"]);
    assert_eq!(loaded.train.len(), 1);
    // With the default policy, these fail the load like any other problem.
    assert!(matches!(load(root, &quiet()), Err(Error::BadImages { .. })));
}

#[test]
fn a_csv_row_that_is_not_utf8_is_one_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("img/a.png"), &png(1));
    write(root.join("img/b.png"), &png(2));
    write(root.join("img/c.png"), &png(3));
    let latin1 = root.join("img").join(raw(b"d\xe9.png"));
    write(&latin1, &png(4));
    let csv = root.join("labels.csv");
    write(
        &csv,
        b"path,label\nimg/a.png,cat\nimg/b.png,chat\xe9\nimg/c.png,dog\nimg/d\xe9.png,dog\n",
    );
    let loaded = load(&csv, &skip()).unwrap();
    let ds = &loaded.dataset;
    assert_eq!(ds.classes.classes, ["cat", "dog"]);
    assert_eq!(ds.train.len(), 3);
    assert!(ds.train.iter().any(|s| s.path == latin1));
    match problem_at(&loaded.report.problems, &root.join("img/b.png")) {
        ProblemKind::BadLabel { row, reason, .. } => {
            assert_eq!(*row, 2);
            assert!(reason.contains("UTF-8"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(loaded.report.problems.len(), 1, "{}", loaded.report);
}

#[test]
fn csv_labels_that_cannot_be_class_names_are_problems_of_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for name in ["a", "b", "c", "d", "e"] {
        write(root.join(format!("{name}.png")), &png(name.as_bytes()[0]));
    }
    let csv = root.join("labels.csv");
    write(
        &csv,
        "path,label\na.png,cat\nb.png,../../etc\nc.png,\"x\u{1b}y\"\nd.png,..\ne.png,cat\n"
            .as_bytes(),
    );
    let loaded = load(&csv, &skip()).unwrap();
    assert_eq!(loaded.dataset.classes.classes, ["cat"]);
    assert_eq!(loaded.dataset.train.len(), 2);
    for (file, row) in [("b.png", 2), ("c.png", 3), ("d.png", 4)] {
        assert!(
            matches!(
                problem_at(&loaded.report.problems, &root.join(file)),
                ProblemKind::BadLabel { row: r, .. } if *r == row
            ),
            "{file}: {}",
            loaded.report
        );
    }
}

#[test]
fn a_class_name_refused_in_classes_txt_is_an_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("a.png"), &png(1));
    write(root.join("classes.txt"), b"cat\n\ndo/g\n");
    write(root.join("labels.csv"), b"path,label\na.png,cat\n");
    match open(&root.join("labels.csv")) {
        Err(Error::BadClassName { line, name, .. }) => {
            assert_eq!((line, name.as_str()), (3, "do/g"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversized_csv_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("train/1.png"), &png(1));
    let csv = root.join("train.csv");
    std::fs::File::create(&csv)
        .unwrap()
        .set_len(vista_data::MAX_CSV_BYTES + 1)
        .unwrap();
    let started = Instant::now();
    match open(root) {
        Err(Error::TooBig { path, size, limit }) => {
            assert_eq!(path, csv);
            assert_eq!((size, limit), (limit + 1, vista_data::MAX_CSV_BYTES));
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn symlinks_are_followed_inside_the_root_and_reported_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("secret");
    write(outside.join("key.png"), &png(9));
    let root = dir.path().join("data");
    write(root.join("cat/a.png"), &png(1));
    let unix = |target: &Path, link: &Path| std::os::unix::fs::symlink(target, link).unwrap();
    // Inside the root: a file linked from another class folder is read.
    write(root.join("dog/b.png"), &png(2));
    unix(Path::new("../cat/a.png"), &root.join("dog/also-a.png"));
    // Outside the root: a file, a class folder, and a folder inside a class.
    unix(&outside.join("key.png"), &root.join("cat/key.png"));
    unix(&outside, &root.join("owl"));
    unix(&outside, &root.join("cat/elsewhere"));
    // Loops and dead ends: a folder linking to its parent, a link to itself, a
    // dangling link.
    unix(Path::new(".."), &root.join("dog/up"));
    unix(Path::new("self.png"), &root.join("dog/self.png"));
    unix(Path::new("gone.png"), &root.join("dog/dangling.png"));

    let loaded = load(&root, &skip()).unwrap();
    let report = &loaded.report.problems;
    let real_outside = outside.canonicalize().unwrap();
    for link in ["cat/key.png", "owl", "cat/elsewhere"] {
        let kind = problem_at(report, &root.join(link));
        assert!(
            matches!(kind, ProblemKind::OutsideRoot { target } if target.starts_with(&real_outside)),
            "{link}: {kind:?}"
        );
    }
    assert_eq!(codes_at(report, &root.join("dog/up")), ["unplaced"]);
    assert_eq!(codes_at(report, &root.join("dog/self.png")), ["unreadable"]);
    assert_eq!(
        codes_at(report, &root.join("dog/dangling.png")),
        ["unreadable"]
    );
    assert_eq!(report.len(), 6, "{}", loaded.report);
    assert_eq!(loaded.dataset.classes.classes, ["cat", "dog"]);
    let paths: Vec<&PathBuf> = loaded.dataset.train.iter().map(|s| &s.path).collect();
    assert_eq!(
        paths,
        [
            &root.join("cat/a.png"),
            &root.join("dog/also-a.png"),
            &root.join("dog/b.png")
        ]
    );
}

#[test]
fn analytics_vidhya_rows_cannot_leave_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path().join("outside.png"), &png(7));
    let root = dir.path().join("av");
    write(root.join("train/1.png"), &png(1));
    write(
        root.join("train.csv"),
        b"image_name,label\n1.png,0\n../../outside.png,1\n",
    );
    let loaded = load(&root, &skip()).unwrap();
    assert_eq!(loaded.dataset.train.len(), 1);
    assert_eq!(
        codes_at(&loaded.report.problems, &dir.path().join("outside.png")),
        ["outside_root"]
    );
}

#[test]
fn an_empty_dataset_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join(raw(b"\xe9t\xe9")).join("a.png"), &png(1));
    match open(root) {
        Err(Error::EmptyWithProblems { report, .. }) => {
            assert_eq!(report.problems.len(), 1);
            assert_eq!(report.problems[0].kind.code(), "bad_class_folder");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn kaggle_test_folders_of_unknown_classes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root.join("seg_train/cat/a.png"), &png(1));
    write(root.join("seg_test/cat/b.png"), &png(2));
    write(root.join("seg_test/owl/c.png"), &png(3));
    let loaded = load(root, &skip()).unwrap();
    assert_eq!(loaded.test.len(), 1);
    assert_eq!(
        problem_at(&loaded.report.problems, &root.join("seg_test/owl")),
        &ProblemKind::UnknownClassFolder {
            class: "owl".into()
        }
    );
}

#[test]
fn csv_bytes_parse_without_the_file_system() {
    let (rows, problems) = parse_dataset_csv(
        b"Label , PATH\ncat,a.png\n\xff,b.png\ndog\n,\n",
        Path::new("l.csv"),
        Path::new("d"),
        &CsvColumns::new("path", Some("label")),
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].row,
            rows[0].file.as_path(),
            rows[0].label.as_deref()
        ),
        (1, Path::new("a.png"), Some("cat"))
    );
    let codes: Vec<_> = ProblemReport::new(problems)
        .problems
        .iter()
        .map(|p| (p.path.clone(), p.kind.code()))
        .collect();
    assert_eq!(
        codes,
        [
            (PathBuf::from("d"), "missing_file"),
            (PathBuf::from("d"), "missing_file"),
            (PathBuf::from("d/b.png"), "bad_label"),
        ]
    );
    let err = parse_dataset_csv(
        b"a,b\n",
        Path::new("l.csv"),
        Path::new("."),
        &CsvColumns::new("path", None),
    );
    assert!(matches!(err, Err(Error::MissingColumn { .. })));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(11),
        ..Default::default()
    })]

    /// Any bytes are a CSV with problems or a missing column, never a panic.
    #[test]
    fn any_csv_bytes_parse_without_panicking(
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
    ) {
        let bytes = [&b"path,label,split\n"[..], &body].concat();
        let mut labelled = CsvColumns::new("path", Some("label"));
        labelled.split = Some("split".into());
        let (rows, problems) =
            parse_dataset_csv(&bytes, Path::new("x.csv"), Path::new("."), &labelled)
                .unwrap();
        for p in &problems {
            let _ = p.to_string();
        }
        proptest::prop_assert!(rows.iter().all(|r| !r.file.as_os_str().is_empty()));
        let _ = parse_dataset_csv(
            &body,
            Path::new("x.csv"),
            Path::new("."),
            &CsvColumns::new("path", None),
        );
    }
}
