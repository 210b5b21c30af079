//! `vista gan train`, `vista gan sample` and `vista train --extra-data` on the small
//! synthetic dataset with tiny networks.

use crate::train::{train_args, write_dataset};
use crate::{text, vista};

#[test]
fn gan_images_are_written_marked_scored_and_trained_on() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = t.join("data");
    write_dataset(&data, 24);
    let d = data.to_str().unwrap();
    let gan = t.join("gan");
    let g = gan.to_str().unwrap();
    let gan_args = [
        "gan",
        "train",
        "--data",
        d,
        "--out",
        g,
        "--features",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--critic-steps",
        "2",
        "--seed",
        "5",
    ];
    let out = vista(&gan_args, t);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Wasserstein estimate"), "{stdout}");
    assert!(gan.join("samples/epoch-0001.png").is_file());

    // Resumed with one more epoch, it trains on from its checkpoint.
    let mut more = gan_args.to_vec();
    more[9] = "2";
    more.push("--resume");
    let out = vista(&more, t);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(gan.join("samples/epoch-0002.png").is_file());

    // A classifier on the real images, to score the generated ones.
    let clf = t.join("clf");
    let c = clf.to_str().unwrap();
    let out = vista(&train_args(d, c), t);
    assert!(out.status.success(), "{:?}", text(&out));

    let synth = t.join("synth");
    let s = synth.to_str().unwrap();
    let sample = [
        "gan",
        "sample",
        "--run",
        g,
        "--per-class",
        "5",
        "--out",
        s,
        "--check-with",
        c,
    ];
    let out = vista(&sample, t);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("class consistency"), "{stdout}");
    for class in ["horizontal", "vertical", "square"] {
        let n = std::fs::read_dir(synth.join(class)).unwrap().count();
        assert_eq!(n, 5, "{class}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(synth.join("synthetic.json")).unwrap()).unwrap();
    assert_eq!(manifest["synthetic"], true);
    assert_eq!(manifest["images"].as_array().unwrap().len(), 15);
    assert_eq!(manifest["epochs"], 2);
    assert!(
        manifest["generator"]
            .as_str()
            .unwrap()
            .ends_with("generator.bin"),
        "{manifest}"
    );
    let consistency: serde_json::Value =
        serde_json::from_slice(&std::fs::read(synth.join("consistency.json")).unwrap()).unwrap();
    let overall = consistency["overall"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&overall));
    assert_eq!(consistency["per_class"].as_array().unwrap().len(), 3);

    // The folder exists now: sampling into it again is refused and changes nothing.
    let out = vista(&sample, t);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("already exists"), "{:?}", text(&out));
    assert_eq!(std::fs::read_dir(synth.join("square")).unwrap().count(), 5);

    // Training with the generated images: one per eight real training images.
    let run = t.join("with");
    let r = run.to_str().unwrap();
    let mut args = train_args(d, r);
    args.extend(["--extra-data", s, "--extra-ratio", "0.125"]);
    let out = vista(&args, t);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["extra_ratio"], 0.125);

    // Asking for more generated images than the folder holds is an error naming it.
    let too_many = t.join("too-many");
    let mut args = train_args(d, too_many.to_str().unwrap());
    args.extend(["--extra-data", s, "--extra-ratio", "2"]);
    let out = vista(&args, t);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("holds 15"), "{:?}", text(&out));

    // A class folder the dataset lacks is named.
    std::fs::create_dir(synth.join("owl")).unwrap();
    std::fs::copy(synth.join("square/gan-00000.png"), synth.join("owl/x.png")).unwrap();
    let owl = t.join("owl");
    let mut args = train_args(d, owl.to_str().unwrap());
    args.extend(["--extra-data", s]);
    let out = vista(&args, t);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("`owl`"), "{:?}", text(&out));
}
