//! `vista data ...` on the fixtures in `tests/data`.

use crate::{root, text, vista};

const BAD_FOLDER_PROBLEMS: [(&str, &str); 4] = [
    ("bad-folder/cat/truncated.jpg", "truncated or corrupt image"),
    ("bad-folder/cat/notes.jpg", "not an image"),
    ("bad-folder/cat/empty.png", "zero-byte file"),
    ("bad-folder/owl", "class folder `owl` holds no image"),
];

const BAD_CSV_PROBLEMS: [(&str, &str); 3] = [
    (
        "bad-folder/dog/missing.jpg",
        "missing file, named by tests/data/bad-csv/labels.csv row 3",
    ),
    ("bad-folder/cat/rgba.png", "unknown label `horse`"),
    (
        "bad-folder/cat/good1.jpg",
        "duplicate entry in tests/data/bad-csv/labels.csv row 5",
    ),
];

fn assert_names(output: &str, problems: &[(&str, &str)]) {
    for (file, problem) in problems {
        let line = output
            .lines()
            .find(|l| l.contains(file) && l.contains(problem));
        assert!(
            line.is_some(),
            "no line names {file} with `{problem}` in:\n{output}"
        );
    }
}

#[test]
fn check_with_error_policy_names_every_problem_and_fails() {
    let cache = tempfile::tempdir().unwrap();
    let out = vista(
        &[
            "data",
            "check",
            "tests/data/bad-folder",
            "--on-bad-image",
            "error",
        ],
        cache.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "must exit non-zero:\n{stdout}");
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
    // The library says what went wrong; the binary says which flag changes it.
    assert!(stderr.contains("hint: `--on-bad-image skip`"), "{stderr}");
    assert_names(&stderr, &BAD_FOLDER_PROBLEMS);
    // The unusual but valid encodings are decoded, not reported.
    assert!(
        !stderr.contains("cmyk.jpg") && !stderr.contains("gray16.png"),
        "{stderr}"
    );

    let out = vista(
        &["data", "check", "tests/data/bad-csv/labels.csv"],
        cache.path(),
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert_names(&stderr, &BAD_CSV_PROBLEMS);
}

#[test]
fn check_with_skip_policy_processes_the_rest_and_writes_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("problems.csv");
    let args = [
        "data",
        "check",
        "tests/data/bad-folder",
        "--on-bad-image",
        "skip",
        "--report",
        report.to_str().unwrap(),
    ];
    let out = vista(&args, dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_names(&stdout, &BAD_FOLDER_PROBLEMS);
    // cat keeps good1.jpg and rgba.png; dog keeps good2.jpg, cmyk.jpg and gray16.png.
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["cat", "2", "0", "0"]),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["dog", "3", "0", "0"]),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&report).unwrap();
    assert_eq!(written.lines().count(), 1 + 4, "{written}");

    let out = vista(
        &[
            "data",
            "check",
            "tests/data/bad-csv/labels.csv",
            "--on-bad-image",
            "skip",
        ],
        dir.path(),
    );
    assert!(out.status.success());
    assert_names(&text(&out).0, &BAD_CSV_PROBLEMS);
}

#[test]
fn check_detects_each_layout() {
    let cache = tempfile::tempdir().unwrap();
    for (path, layout, total) in [
        ("tests/data/kaggle", "Kaggle Intel", "total 12 0 12"),
        ("tests/data/av", "Analytics Vidhya", "total 12 0 0"),
        (
            "tests/data/bad-csv/labels.csv",
            "CSV of path,label",
            "total 2 0 0",
        ),
    ] {
        let out = vista(
            &["data", "check", path, "--on-bad-image", "skip"],
            cache.path(),
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{path}: {stderr}");
        assert!(
            stdout.contains(&format!("layout:  {layout}")),
            "{path}:\n{stdout}"
        );
        let totals = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
        assert!(
            totals.clone().any(|l| l == total),
            "{path}: no `{total}` line in\n{stdout}"
        );
    }
}

#[test]
fn show_writes_a_grid_of_augmented_images() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("grid.png");
    let args = [
        "data",
        "show",
        "tests/data/kaggle",
        "--augment",
        "--out",
        png.to_str().unwrap(),
        "--count",
        "6",
        "--size",
        "32",
        "--cols",
        "3",
    ];
    let out = vista(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out).1);
    let img = image::open(&png).unwrap();
    // 3 columns and 2 rows of 32 px images shown at 3x, with 2 px gaps.
    assert_eq!((img.width(), img.height()), (3 * 98 + 2, 2 * 98 + 2));
}

#[test]
fn prepare_writes_the_embedded_data_as_a_competition_folder() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("fm");
    let args = [
        "data",
        "prepare",
        "--out",
        target.to_str().unwrap(),
        "--train-limit",
        "30",
        "--test-limit",
        "5",
    ];
    let out = vista(&args, dir.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), target.to_str().unwrap());
    let out = vista(&["data", "check", target.to_str().unwrap()], dir.path());
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("Analytics Vidhya") && stdout.contains("ankle_boot"),
        "{stdout}"
    );
    assert!(stdout.contains("unlabelled: 5"), "{stdout}");
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let out = vista(&["data", "check", "no/such/folder"], cache.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no/such/folder") && stderr.contains("no such file or folder"),
        "{stderr}"
    );
    let _ = root();
}

#[test]
fn device_check_runs_on_the_cpu() {
    let cache = tempfile::tempdir().unwrap();
    let out = vista(&["device", "--device", "cpu"], cache.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("matmul matches"), "{stdout}");
    let out = vista(&["device", "--device", "gpu"], cache.path());
    assert!(!out.status.success());
    assert!(text(&out).1.contains("`gpu` is not a device"));
}

#[test]
fn weights_inspect_names_the_architecture_and_checks_the_fit() {
    let cache = tempfile::tempdir().unwrap();
    let file = "tests/data/models/resnet50_w16_places.pth.tar";
    let out = vista(&["weights", "inspect", file], cache.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("fits: ResNet-50 (torchvision layout), 7 classes"),
        "{stdout}"
    );
    assert!(stdout.contains("layer4.2.conv3.weight"), "{stdout}");
    assert!(
        stdout.contains("load it with: --arch resnet50 --width 0.0625\n"),
        "{stdout}"
    );

    // The width comes from the file when the command line names the same model.
    let out = vista(
        &["weights", "inspect", file, "--arch", "resnet50"],
        cache.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("loads into resnet50 with 7 classes"),
        "{stdout}"
    );

    // The wrong model is a clear error listing what does not fit.
    let out = vista(
        &[
            "weights", "inspect", file, "--arch", "resnet18", "--width", "0.0625",
        ],
        cache.path(),
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does not fit the model") && stderr.contains("layer1.0.conv3.weight"),
        "{stderr}"
    );
}
