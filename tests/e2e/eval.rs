//! `vista predict --tta`, `vista evaluate`, `vista ensemble` and `vista submit` on a
//! small synthetic Kaggle-layout dataset with a labelled `seg_test`.

use std::path::Path;

use crate::train::{image, train_args, write_dataset};
use crate::{text, vista};

/// Trains a tiny model on `data` (with 8 labelled test images per class) into `run`.
fn trained(tmp: &Path) -> (String, String) {
    let data = tmp.join("data");
    write_dataset(&data, 40);
    for (c, name) in ["horizontal", "vertical", "square"].iter().enumerate() {
        let folder = data.join("seg_test").join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..8 {
            image(c, 2000 + i)
                .save(folder.join(format!("t{c}_{i}.png")))
                .unwrap();
        }
    }
    let run = tmp.join("run");
    let (d, r) = (data.display().to_string(), run.display().to_string());
    let out = vista(&train_args(&d, &r), tmp);
    assert!(out.status.success(), "{:?}", text(&out));
    (d, r)
}

fn ok(args: &[&str], tmp: &Path) -> String {
    let out = vista(args, tmp);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "vista {args:?}\n{stdout}\n{stderr}");
    stdout
}

fn accuracy(stdout: &str) -> f64 {
    let at = stdout.find("accuracy ").expect("an accuracy line") + "accuracy ".len();
    stdout[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn predictions_with_tta_evaluate_ensemble_and_submit() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (d, r) = trained(t);
    let p = |name: &str| t.join(format!("{name}.csv")).display().to_string();

    // Every TTA writes a labelled prediction file of the 24 test images.
    let mut accs = Vec::new();
    for tta in ["none", "flip", "ten-crop", "fastai"] {
        let stdout = ok(
            &[
                "predict",
                "--run",
                &r,
                "--data",
                &d,
                "--split",
                "test",
                "--tta",
                tta,
                "--out",
                &p(tta),
            ],
            t,
        );
        assert!(stdout.contains(&format!("{tta} TTA")), "{stdout}");
        let csv = std::fs::read_to_string(p(tta)).unwrap();
        assert!(
            csv.starts_with(
                "image,label,prediction,prediction/2,prediction/3,horizontal,square,vertical\n"
            ),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 25);
        accs.push(accuracy(&stdout));
    }
    assert!(accs[0] >= 0.8, "plain accuracy {}", accs[0]);

    // Evaluate: scores, pictures, and the accuracy predict printed.
    let eval = t.join("eval");
    let stdout = ok(
        &[
            "evaluate",
            &p("none"),
            "--data",
            &d,
            "--out",
            eval.to_str().unwrap(),
            "--top",
            "6",
        ],
        t,
    );
    assert!((accuracy(&stdout) - accs[0]).abs() < 1e-9, "{stdout}");
    assert!(
        stdout.contains("precision") && stdout.contains("actual \\ predicted"),
        "{stdout}"
    );
    for f in [
        "evaluation.json",
        "evaluation.txt",
        "confusion.png",
        "top_losses.png",
    ] {
        assert!(eval.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(json["top_losses"].as_array().unwrap().len(), 6);
    assert_eq!(json["images"], 24);

    // Ensemble three files by vote and by mean; both print each member's accuracy.
    for method in ["vote", "mean"] {
        let out = p(&format!("ens-{method}"));
        let stdout = ok(
            &[
                "ensemble",
                &p("none"),
                &p("flip"),
                &p("ten-crop"),
                "--method",
                method,
                "--out",
                &out,
            ],
            t,
        );
        assert!(stdout.contains(&format!("ensemble ({method})")), "{stdout}");
        assert!(std::fs::read_to_string(&out).unwrap().lines().count() == 25);
    }

    // Submissions: Analytics Vidhya ids, and class folders of copies.
    let sub = t.join("sub.csv");
    ok(
        &[
            "submit",
            &p("ens-vote"),
            "--format",
            "av",
            "--out",
            sub.to_str().unwrap(),
        ],
        t,
    );
    let csv = std::fs::read_to_string(&sub).unwrap();
    assert!(csv.starts_with("image_name,label\n"));
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| matches!(l.rsplit(',').next(), Some("0" | "1" | "2"))),
        "{csv}"
    );
    let folders = t.join("folders");
    ok(
        &[
            "submit",
            &p("ens-vote"),
            "--format",
            "folders",
            "--data",
            &d,
            "--out",
            folders.to_str().unwrap(),
        ],
        t,
    );
    let copied: usize = ["horizontal", "square", "vertical"]
        .iter()
        .map(|c| std::fs::read_dir(folders.join(c)).unwrap().count())
        .sum();
    assert_eq!(copied, 24);
    assert!(
        Path::new(&d).join("seg_test/square/t2_0.png").is_file(),
        "sources stay"
    );
}

#[test]
fn bad_evaluation_inputs_fail_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = t.join("a.csv");
    let b = t.join("b.csv");
    std::fs::write(
        &a,
        "image,prediction,x,y\n1.png,x,0.9,0.1\n2.png,y,0.2,0.8\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "image,prediction,x,y\n1.png,x,0.9,0.1\n3.png,y,0.2,0.8\n",
    )
    .unwrap();
    let out = vista(
        &[
            "ensemble",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            t.join("e.csv").to_str().unwrap(),
        ],
        t,
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("b.csv") && stderr.contains("3.png"),
        "{stderr}"
    );
    assert!(!t.join("e.csv").exists());

    let out = vista(
        &[
            "evaluate",
            a.to_str().unwrap(),
            "--out",
            t.join("ev").to_str().unwrap(),
        ],
        t,
    );
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no labels"), "{:?}", text(&out));

    let labels = t.join("labels.csv");
    std::fs::write(&labels, "image_name,label\n1.png,x\n2.png,x\n").unwrap();
    let stdout = ok(
        &[
            "evaluate",
            a.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            t.join("ev").to_str().unwrap(),
        ],
        t,
    );
    assert!(stdout.contains("accuracy 0.5000"), "{stdout}");
}
