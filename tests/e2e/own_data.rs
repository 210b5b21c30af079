//! A user's own photo folder: the split-folder layout (`train/`, `val/`, `test/`), the
//! formats cameras and the web give, a CSV with a validation column, and a validation
//! set given on the command line.

use std::path::Path;

use image::ImageFormat;

use crate::train::{image, metrics, train_args};
use crate::{text, vista};

const CLASSES: [&str; 3] = ["horizontal", "vertical", "square"];

/// Formats the images of a folder rotate through.
const FORMATS: [(ImageFormat, &str); 6] = [
    (ImageFormat::Png, "png"),
    (ImageFormat::WebP, "webp"),
    (ImageFormat::Bmp, "bmp"),
    (ImageFormat::Jpeg, "jpg"),
    (ImageFormat::Tiff, "tif"),
    (ImageFormat::Gif, "gif"),
];

/// `n` images of each class in `dir/<class>/`, in every format in turn; `swap` files
/// the horizontal and vertical stripes under each other's names.
pub(crate) fn write_classes(dir: &Path, n: usize, first: usize, swap: bool) {
    for (c, name) in CLASSES.iter().enumerate() {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        let drawn = match (swap, c) {
            (true, 0) => 1,
            (true, 1) => 0,
            _ => c,
        };
        for i in 0..n {
            let (format, ext) = FORMATS[i % FORMATS.len()];
            image(drawn, first + i)
                .save_with_format(folder.join(format!("{i}.{ext}")), format)
                .unwrap();
        }
    }
}

/// Only the last epoch's validation accuracy of a run.
fn accuracy(run: &Path) -> f32 {
    let last = metrics(run).pop().unwrap();
    last.split(',').nth(6).unwrap().parse().unwrap()
}

#[test]
fn split_folders_are_detected_and_their_validation_set_is_the_one_used() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("photos");
    write_classes(&data.join("train"), 40, 0, false);
    write_classes(&data.join("val"), 6, 500, false);
    write_classes(&data.join("test"), 6, 700, false);
    let d = data.to_str().unwrap();

    let out = vista(&["data", "check", d], tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("layout:  split folders"), "{stdout}");
    let squeezed: Vec<String> = (stdout.lines())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(squeezed.iter().any(|l| l == "total 120 18 18"), "{stdout}");
    assert!(squeezed.iter().any(|l| l == "square 40 6 6"), "{stdout}");
    assert!(
        stdout.contains("validation: the dataset's own 18 images"),
        "{stdout}"
    );
    // Six formats, every file read.
    assert!(stdout.contains("problems: none"), "{stdout}");

    // `train/` alone is split folders too (a run splits its validation set off).
    let alone = tmp.path().join("alone");
    write_classes(&alone.join("train"), 2, 0, false);
    let out = vista(&["data", "check", alone.to_str().unwrap()], tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("layout:  split folders"), "{stdout}");
    assert!(stdout.contains("validation: none given"), "{stdout}");

    let run = tmp.path().join("run");
    let out = vista(&train_args(d, run.to_str().unwrap()), tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(accuracy(&run) >= 0.8, "{:?}", metrics(&run));

    // No memory for decoded images: every one is spilled to a file beside the run and
    // read back, and the run is the same to the last bit; the file leaves no trace.
    let runs = tmp.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let spilled = runs.join("spilled");
    let mut args = train_args(d, spilled.to_str().unwrap());
    args.extend(["--cache-mb", "0"]);
    // Not quiet, for the note on the spilled images.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vista"))
        .args(&args)
        .current_dir(crate::root())
        .env("VISTA_CACHE_DIR", tmp.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("past the budget read back from disk"),
        "{stderr}"
    );
    assert_eq!(metrics(&spilled), metrics(&run));
    let left: Vec<_> = std::fs::read_dir(&runs).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");

    // Per-class scores of the finished model on the validation set.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("valid_report.json")).unwrap()).unwrap();
    assert_eq!(report["images"], 18);
    assert_eq!(report["per_class"][1]["class"], "square");
    assert_eq!(report["per_class"][1]["support"], 6);
    assert!(run.join("valid_confusion.png").is_file());

    // The best epoch by validation loss is kept beside the last.
    let rows = metrics(&run);
    let loss = |row: &String| row.split(',').nth(5).unwrap().parse::<f32>().unwrap();
    let best = (rows[1..].iter())
        .min_by(|a, b| loss(a).total_cmp(&loss(b)))
        .unwrap();
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("best.json")).unwrap()).unwrap();
    assert_eq!(kept["epoch"].to_string(), best.split(',').nth(1).unwrap());
    // The model file names its epoch too, in the safetensors header's metadata.
    let file = std::fs::read(run.join("best.safetensors")).unwrap();
    let len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + len]).unwrap();
    assert_eq!(
        header["__metadata__"]["epoch"],
        kept["epoch"].to_string().as_str()
    );

    // Early stopping: with accuracy as the judge, a run stops once it stops improving.
    let early = tmp.path().join("early");
    let mut args = train_args(d, early.to_str().unwrap());
    args.extend(["--monitor", "accuracy", "--early-stop", "2"]);
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    let rows = metrics(&early);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(early.join("best.json")).unwrap()).unwrap();
    let last: u64 = rows
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(rows.len() - 1 < 8, "{rows:?}");
    assert_eq!(kept["epoch"].as_u64().unwrap() + 2, last, "{rows:?}");

    // Predicting the labelled test split.
    let preds = tmp.path().join("test.csv");
    let out = vista(
        &[
            "predict",
            "--run",
            run.to_str().unwrap(),
            "--data",
            d,
            "--out",
            preds.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(std::fs::read_to_string(&preds).unwrap().lines().count(), 19);

    // New photos need only the run folder: a folder walked with its subfolders, a file
    // of another kind in it listed, one image on its own.
    let new = tmp.path().join("new");
    write_classes(&new.join("deep/er"), 2, 800, false);
    std::fs::write(new.join("notes.txt"), "not a photo").unwrap();
    let one = new.join("deep/er/square/1.webp");
    let preds = tmp.path().join("new.csv");
    let r = run.to_str().unwrap();
    let p = preds.to_str().unwrap();
    let predict = |paths: &[&str], extra: &[&str]| {
        let mut args = vec!["predict", "--run", r, "--out", p];
        args.extend(paths);
        args.extend(extra);
        vista(&args, tmp.path())
    };
    let out = predict(&[new.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("notes.txt"), "{:?}", text(&out));
    let out = predict(
        &[new.to_str().unwrap()],
        &["--on-bad-image", "skip", "--top-k", "2"],
    );
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stdout}
{stderr}"
    );
    let csv = std::fs::read_to_string(&preds).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert!(
        csv.starts_with("image,prediction,prediction/2,horizontal,square,vertical\n"),
        "{csv}"
    );
    assert!(csv.contains("\ndeep/er/square/1.webp,square,"), "{csv}");
    assert!(
        stdout.contains("deep/er/horizontal/0.png: horizontal"),
        "{stdout}"
    );
    let out = predict(&[one.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{:?}", text(&out));
    let csv = std::fs::read_to_string(&preds).unwrap();
    assert_eq!(
        csv.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .take(2)
            .collect::<Vec<_>>(),
        ["1.webp", "square"]
    );

    // The same photos with the stripes' validation labels swapped: a run validates on
    // them, not on a split of `train`, so it scores at most the square's third.
    std::fs::remove_dir_all(data.join("val")).unwrap();
    write_classes(&data.join("valid"), 6, 500, true);
    let swapped = tmp.path().join("swapped");
    let out = vista(&train_args(d, swapped.to_str().unwrap()), tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(accuracy(&swapped) <= 0.5, "{:?}", metrics(&swapped));

    // `--valid` takes a folder from elsewhere over the dataset's own.
    let mine = tmp.path().join("my-valid");
    write_classes(&mine, 6, 900, false);
    let given = tmp.path().join("given");
    let mut args = train_args(d, given.to_str().unwrap());
    args.extend(["--valid", mine.to_str().unwrap()]);
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(accuracy(&given) >= 0.8, "{:?}", metrics(&given));
}

#[test]
fn a_csv_with_its_own_column_names_and_a_validation_column() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_classes(&dir.join("img"), 4, 0, false);
    let mut csv = String::from("fname,category,is_valid\n");
    for name in CLASSES {
        for i in 0..4 {
            let ext = FORMATS[i % FORMATS.len()].1;
            let valid = if i == 3 { "True" } else { "False" };
            csv += &format!("img/{name}/{i}.{ext},{name},{valid}\n");
        }
    }
    // Writes the CSV and checks it as a dataset.
    let check = |csv: &str| {
        std::fs::write(dir.join("labels.csv"), csv).unwrap();
        vista(
            &["data", "check", dir.join("labels.csv").to_str().unwrap()],
            dir,
        )
    };
    let out = check(&csv);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let squeezed: Vec<String> = (stdout.lines())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(squeezed.iter().any(|l| l == "total 9 3 0"), "{stdout}");

    // A test row without a label is an image to predict.
    image(2, 99).save(dir.join("img/extra.png")).unwrap();
    csv += "img/extra.png,,test\n";
    let out = check(&csv);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("unlabelled: 1"), "{stdout}");

    // A split cell that names no split is a problem of its row.
    csv += "img/square/0.png,square,maybe\n";
    let out = check(&csv);
    assert!(!out.status.success());
    assert!(text(&out).0.contains("split `maybe`"), "{:?}", text(&out));
}

#[test]
fn an_exported_full_width_model_fine_tunes_under_the_cpu_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("photos");
    write_classes(&data.join("train"), 8, 0, false);
    write_classes(&data.join("valid"), 2, 500, false);
    let d = data.to_str().unwrap();
    // A full-width ResNet-18 with torchvision's stem, as torchvision's weights are.
    let full = tmp.path().join("full");
    let out = vista(
        &[
            "train",
            "--data",
            d,
            "--out",
            full.to_str().unwrap(),
            "--arch",
            "resnet18",
            "--width",
            "1",
            "--small-stem",
            "false",
            "--sizes",
            "32",
            "--epochs",
            "1",
            "--no-augment",
            "--mixup",
            "0",
            "--batch-size",
            "8",
            "--seed",
            "1",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));

    let file = tmp.path().join("resnet18.safetensors");
    let export = |extra: &[&str]| {
        let mut args = vec![
            "export",
            "--run",
            full.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ];
        args.extend(extra);
        vista(&args, tmp.path())
    };
    let out = export(&[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("torchvision.models.resnet18(num_classes=3)"),
        "{stdout}"
    );
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("resnet18.json")).unwrap()).unwrap();
    assert_eq!(
        info["classes"],
        serde_json::json!(["horizontal", "square", "vertical"])
    );
    assert_eq!(info["input_size"], 32);
    // The export is not written over without --force.
    assert!(!export(&[]).status.success());
    assert!(export(&["--force"]).status.success());

    // `weights inspect` reads it as torchvision's ResNet-18.
    let out = vista(&["weights", "inspect", file.to_str().unwrap()], tmp.path());
    assert!(
        text(&out)
            .0
            .contains("fits: ResNet-18 (torchvision layout), 3 classes")
    );

    // The CPU recipe's narrow width and small stem give way to the checkpoint's shape.
    let tuned = tmp.path().join("tuned");
    let mut args = vec![
        "train",
        "--data",
        d,
        "--out",
        tuned.to_str().unwrap(),
        "--pretrained",
        file.to_str().unwrap(),
        "--sizes",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "8",
    ];
    let out = vista(&args, tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("resnet18 from the checkpoint (width 1, standard stem)"),
        "{stderr}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tuned.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["width"], 1.0);

    // A setting that contradicts the file is an error naming both.
    let other = tmp.path().join("other");
    args[4] = other.to_str().unwrap();
    args.extend(["--width", "0.5"]);
    let out = vista(&args, tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("has width 1, not the 0.5 asked for"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn imbalanced_classes_are_warned_of_and_can_be_weighted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("photos");
    write_classes(&data.join("train"), 30, 0, false);
    // Leave 25 of the 30 squares out: 30 against 5.
    for i in 5..30 {
        let ext = FORMATS[i % FORMATS.len()].1;
        std::fs::remove_file(data.join(format!("train/square/{i}.{ext}"))).unwrap();
    }
    let d = data.to_str().unwrap();
    let out = vista(&["data", "check", d], tmp.path());
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains(
            "warning: classes are imbalanced: `horizontal` has 30 training images, `square` 5"
        ),
        "{stdout}"
    );

    let weights = |run: &Path| -> serde_json::Value {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
        config["class_weights"].clone()
    };
    let balanced = tmp.path().join("balanced");
    let mut args = train_args(d, balanced.to_str().unwrap());
    args.extend(["--class-weights", "balanced"]);
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    // n / (k · n_c) over the training part (the 10% split off for validation is not in it).
    let w: Vec<f64> = serde_json::from_value(weights(&balanced)).unwrap();
    assert!(w[1] > 4.0 * w[0] && (w[0] - w[2]).abs() < 1e-6, "{w:?}");

    let file = tmp.path().join("weights.csv");
    std::fs::write(&file, "class,weight\nsquare,3\n").unwrap();
    let given = tmp.path().join("given");
    let mut args = train_args(d, given.to_str().unwrap());
    args.extend(["--class-weights", file.to_str().unwrap()]);
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(weights(&given), serde_json::json!([1.0, 3.0, 1.0]));
}
