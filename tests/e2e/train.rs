//! `vista train`, `vista lr-find` and `vista predict` on a small synthetic dataset in the
//! Kaggle Intel layout, including a run killed with SIGKILL and resumed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};

use crate::{root, text, vista};

/// Three classes of 16x16 images (horizontal stripes, vertical stripes, a square) in
/// `seg_train/<class>/`, and unlabelled ones in `seg_pred/`.
pub fn write_dataset(dir: &Path, per_class: usize) {
    let classes = ["horizontal", "vertical", "square"];
    for (c, name) in classes.iter().enumerate() {
        let folder = dir.join("seg_train").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..per_class {
            image(c, i).save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
    let pred = dir.join("seg_pred");
    std::fs::create_dir_all(&pred).unwrap();
    for i in 0..9 {
        image(i % 3, 1000 + i)
            .save(pred.join(format!("p{i}.png")))
            .unwrap();
    }
}

pub fn image(class: usize, i: usize) -> RgbImage {
    let phase = (i % 4) as u32;
    let base = [
        (i * 37 % 120) as u8,
        (i * 71 % 120) as u8,
        (i * 13 % 120) as u8,
    ];
    RgbImage::from_fn(16, 16, |x, y| {
        let on = match class {
            0 => (y + phase) % 4 < 2,
            1 => (x + phase) % 4 < 2,
            _ => (4..12).contains(&x) && (4..12).contains(&y),
        };
        Rgb(base.map(|b| if on { b + 130 } else { b }))
    })
}

const RECIPE: [&str; 14] = [
    "--sizes",
    "16",
    "--epochs",
    "8",
    "--lr",
    "0.01",
    "--width",
    "0.0625",
    "--shards",
    "2",
    "--seed",
    "3",
    "--batch-size",
    "16",
];

pub fn train_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut a = vec![
        "train",
        "--data",
        data,
        "--out",
        out,
        "--no-augment",
        "--mixup",
        "0",
    ];
    a.extend(RECIPE);
    a
}

/// A dataset of `n` images (`write_dataset`) in `dir/data`, and the uninterrupted run
/// of the test recipe on it in `dir/whole`, for tests that interrupt the same run.
pub fn data_and_whole_run(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let data = dir.join("data");
    write_dataset(&data, n);
    let whole = dir.join("whole");
    let out = vista(
        &train_args(data.to_str().unwrap(), whole.to_str().unwrap()),
        dir,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    (data, whole)
}

/// metrics.csv without the timing columns (images/s and wall time).
pub fn metrics(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(8).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn train_then_predict_writes_a_run_folder_and_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 40);
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let out = vista(&train_args(d, r), tmp.path());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("valid accuracy"), "{stdout}");
    for f in [
        "config.json",
        "classes.txt",
        "metrics.csv",
        "loss.png",
        "lr.png",
        "model.bin",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let last = metrics(&run).pop().unwrap();
    let acc: f32 = last.split(',').nth(6).unwrap().parse().unwrap();
    assert!(acc >= 0.8, "valid accuracy {acc}: {last}");

    let preds = tmp.path().join("preds.csv");
    let out = vista(
        &[
            "predict",
            "--run",
            r,
            "--data",
            d,
            "--out",
            preds.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let csv = std::fs::read_to_string(&preds).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // The default --top-k 3 adds the second and third likeliest classes.
    assert_eq!(
        lines[0],
        "image,prediction,prediction/2,prediction/3,horizontal,square,vertical"
    );
    assert_eq!(lines.len(), 10);
    for l in &lines[1..] {
        let p: f32 = l
            .split(',')
            .skip(4)
            .map(|v| v.parse::<f32>().unwrap())
            .sum();
        assert!((p - 1.0).abs() < 1e-3, "probabilities sum to {p}: {l}");
    }

    // A second run into the same folder is refused, not overwritten.
    let out = vista(&train_args(d, r), tmp.path());
    assert!(!out.status.success());
    assert!(text(&out).1.contains("--resume"), "{:?}", text(&out));
}

#[test]
fn lr_find_writes_a_plot_and_the_suggestions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 30);
    let out_dir = tmp.path().join("lr");
    let out = vista(
        &[
            "lr-find",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--sizes",
            "16",
            "--width",
            "0.0625",
            "--batch-size",
            "8",
        ],
        tmp.path(),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("valley"), "{stdout}");
    assert!(out_dir.join("lr_find.png").is_file());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("lr_find.json")).unwrap()).unwrap();
    assert!(json["lrs"].as_array().unwrap().len() > 20);
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_same_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, whole) = data_and_whole_run(tmp.path(), 120);
    let d = data.to_str().unwrap();

    let cut = tmp.path().join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vista"))
        .args(train_args(d, cut.to_str().unwrap()))
        .arg("--quiet")
        .current_dir(root())
        .env("VISTA_CACHE_DIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a checkpoint after the second epoch is in place.
    let latest = cut.join("checkpoints/latest");
    let start = Instant::now();
    loop {
        let epoch = std::fs::read_to_string(&latest).unwrap_or_default();
        if epoch.trim() >= "epoch-0002" {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let done_before = metrics(&cut).len() - 1;
    assert!(
        done_before < 8,
        "the run finished before the kill ({done_before} epochs)"
    );

    let mut args = train_args(d, cut.to_str().unwrap());
    args.push("--resume");
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(metrics(&whole), metrics(&cut));
}

#[test]
fn pretrained_weights_fine_tune_with_a_frozen_epoch_then_every_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_dataset(&data, 30);
    let run = tmp.path().join("run");
    let weights = root().join("tests/data/models/resnet18_w8_small.safetensors");
    let out = vista(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--pretrained",
            weights.to_str().unwrap(),
            "--width",
            "0.125",
            "--small-stem",
            "true",
            "--sizes",
            "16",
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--batch-size",
            "16",
            "--no-augment",
            "--mixup",
            "0",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let phases: Vec<String> = metrics(&run)[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(phases, ["frozen", "16px", "16px"]);
    let config = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(config.contains("resnet18_w8_small.safetensors"), "{config}");

    // Weights of another architecture are refused with the file named.
    let bad = root().join("tests/data/models/inception_v3_w16.pth");
    let out = vista(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            tmp.path().join("bad").to_str().unwrap(),
            "--pretrained",
            bad.to_str().unwrap(),
            "--width",
            "0.125",
            "--sizes",
            "16",
            "--epochs",
            "1",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("inception_v3_w16.pth"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn a_small_folder_trains_with_the_default_recipe_and_a_batch_too_big_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 30 images: 27 to train on, too few for the default batch of 128.
    write_dataset(&data, 10);
    let d = data.to_str().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let out = vista(
        &["train", "--data", d, "--out", r, "--batch-size", "64"],
        tmp.path(),
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("make no full batch of 64"), "{stderr}");
    // Nothing was trained and no settings were written, so the folder takes the next try.
    assert!(!run.join("config.json").exists());
    let out = vista(
        &[
            "train", "--data", d, "--out", r, "--epochs", "1", "--width", "0.0625",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["batch_size"], 8, "{config}");
}

#[test]
fn a_list_of_devices_trains_one_shard_on_each() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, whole) = data_and_whole_run(tmp.path(), 20);
    let d = data.to_str().unwrap();
    // The test recipe's `--shards 2` given instead as two listed devices, through the
    // `--devices` alias: the same two shards, so the same run.
    let listed = tmp.path().join("listed");
    let mut args = train_args(d, listed.to_str().unwrap());
    let at = args.iter().position(|a| *a == "--shards").unwrap();
    args.drain(at..at + 2);
    args.extend(["--devices", "cpu,cpu"]);
    let out = vista(&args, tmp.path());
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(metrics(&whole), metrics(&listed));
    let config = std::fs::read_to_string(listed.join("config.json")).unwrap();
    assert!(config.contains("\"shards\": 2"), "{config}");

    // One run, one kind of device.
    let mixed = tmp.path().join("mixed");
    let mut args = train_args(d, mixed.to_str().unwrap());
    args.extend(["--device", "cpu,cuda:0"]);
    let out = vista(&args, tmp.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("mixes the CPU and CUDA"), "{stderr}");
    assert!(!mixed.exists(), "a refused run left {}", mixed.display());
}
