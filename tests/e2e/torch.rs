//! Against PyTorch itself (Debian's `python3-torch` and `python3-torchvision`): full-width
//! checkpoints that torchvision writes load under the CPU defaults, including Places365's
//! `{'state_dict': {'module.…'}}` legacy form, and `vista export` gives PyTorch's
//! probabilities. Where torch is missing the test says so and passes, unless
//! `VISTA_REQUIRE_TORCH` is set (CI sets it and installs the packages), where that fails.

use std::path::Path;
use std::process::Command;

use crate::own_data::write_classes;
use crate::{root, text, vista};

const PYTHON: &str = "/usr/bin/python3";

/// Whether Debian's python can import torch and torchvision.
fn torch_present() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import torch, torchvision"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("VISTA_REQUIRE_TORCH").is_none(),
            "VISTA_REQUIRE_TORCH is set but {PYTHON} cannot import torch and torchvision"
        );
        eprintln!("skipped: {PYTHON} cannot import torch and torchvision");
    }
    ok
}

/// Writes torchvision's ResNet-18 (its own file format) and a ResNet-50 wrapped as
/// Places365's release (legacy format, DataParallel's `module.` prefix), random weights.
fn write_torchvision_checkpoints(dir: &Path) {
    let script = r#"
import sys, torch, torchvision
torch.manual_seed(0)
out = sys.argv[1]
torch.save(torchvision.models.resnet18().state_dict(), out + "/resnet18.pth")
m = torchvision.models.resnet50(num_classes=365)
wrapped = {"module." + k: v for k, v in m.state_dict().items()}
torch.save({"epoch": 90, "arch": "resnet50", "state_dict": wrapped},
           out + "/resnet50_places365.pth.tar", _use_new_zipfile_serialization=False)
"#;
    let out = Command::new(PYTHON)
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn torchvision_checkpoints_fine_tune_and_exports_give_pytorchs_probabilities() {
    if !torch_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = t.join("photos");
    write_classes(&data.join("train"), 8, 0, false);
    write_classes(&data.join("valid"), 2, 500, false);
    write_torchvision_checkpoints(t);
    let d = data.to_str().unwrap();

    // The CPU defaults (1/8 width, the small stem at 32 px) give way to the files' shape.
    for (arch, file) in [
        ("resnet18", "resnet18.pth"),
        ("resnet50", "resnet50_places365.pth.tar"),
    ] {
        let run = t.join(arch);
        let out = vista(
            &[
                "train",
                "--data",
                d,
                "--out",
                run.to_str().unwrap(),
                "--pretrained",
                t.join(file).to_str().unwrap(),
                "--sizes",
                "32",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--seed",
                "1",
            ],
            t,
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{arch}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!(
                "{arch} from the checkpoint (width 1, standard stem)"
            )),
            "{arch}: {stderr}"
        );
    }

    // The fine-tuned ResNet-18, exported, loads into torchvision's model with
    // `load_state_dict` and gives the probabilities `vista predict` wrote, within 1e-4.
    let run = t.join("resnet18");
    let weights = t.join("m.safetensors");
    let out = vista(
        &[
            "export",
            "--run",
            run.to_str().unwrap(),
            "--out",
            weights.to_str().unwrap(),
        ],
        t,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let image = t.join("probe.png");
    image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 8) as u8, ((x ^ y) * 8) as u8])
    })
    .save(&image)
    .unwrap();
    let preds = t.join("p.csv");
    let out = vista(
        &[
            "predict",
            "--run",
            run.to_str().unwrap(),
            image.to_str().unwrap(),
            "--out",
            preds.to_str().unwrap(),
        ],
        t,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let check = root().join("tests/data/models/check_export_with_pytorch.py");
    let out = Command::new(PYTHON)
        .arg(&check)
        .args([&weights, &t.join("m.json"), &image, &preds])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        text(&out).0.contains("largest difference"),
        "{:?}",
        text(&out)
    );
}
