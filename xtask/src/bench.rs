//! `cargo xtask bench ...`: the benchmarks, side by side with PyTorch where one exists.
//!
//! - `data`: the loader's criterion bench (decode + augment + batch).
//! - `models [--sizes 64,128] [--batch 32] [--steps 3]`: training-step images per second
//!   of each architecture on vista's CPU backend and in PyTorch, in one run on one
//!   machine, with their ratio. PyTorch is Debian's `python3-torch`, installed here with
//!   apt-get when missing.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, run as sh};

const PYTHON: &str = "/usr/bin/python3";

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("data") => sh(cargo().args(["bench", "-p", "vista-data", "--bench", "loader"])),
        Some("models") => models(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench data | models [--sizes 64,128] [--batch 32] [--steps 3]"
        ),
    }
}

/// Ensures Debian's PyTorch is importable, installing it when it is not.
fn ensure_torch() -> Result<()> {
    let ok = |py: &str| {
        Command::new(py)
            .args(["-c", "import torch, torchvision"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(PYTHON) {
        return Ok(());
    }
    eprintln!("installing Debian's python3-torch and python3-torchvision for the PyTorch side");
    sh(Command::new("apt-get").args([
        "install",
        "-y",
        "-q",
        "python3-torch",
        "python3-torchvision",
    ]))
    .context("apt-get could not install python3-torch (run as root, after `apt-get update`)")?;
    if !ok(PYTHON) {
        bail!("{PYTHON} still cannot import torch after installing python3-torch");
    }
    Ok(())
}

/// The value of `"key": value` in a one-line JSON object (strings unquoted).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let rest = rest.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('"'))
}

fn rows(stdout: &[u8]) -> Vec<(String, String, Option<f64>, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| {
            Some((
                field(l, "model")?.to_owned(),
                field(l, "size")?.to_owned(),
                field(l, "img_per_s")?.parse().ok(),
                field(l, "backend").unwrap_or("?").to_owned(),
            ))
        })
        .collect()
}

fn models(args: &[String]) -> Result<()> {
    let mut opts = vec![
        "--sizes".to_string(),
        "64,128".into(),
        "--batch".into(),
        "32".into(),
        "--steps".into(),
        "3".into(),
    ];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--sizes" => 1,
            "--batch" => 3,
            "--steps" => 5,
            other => bail!("unknown option `{other}`"),
        };
        opts[slot] = it
            .next()
            .with_context(|| format!("{a} needs a value"))?
            .clone();
    }
    ensure_torch()?;
    sh(cargo().args(["build", "--release", "-p", "vista-cli"]))?;
    let vista = root().join("target/release/vista");
    eprintln!("measuring vista (this takes a few minutes on 2 cores)");
    let ours = Command::new(&vista)
        .args(["bench", "models"])
        .args(&opts)
        .output()
        .context("running vista bench")?;
    if !ours.status.success() {
        bail!(
            "vista bench models failed:\n{}",
            String::from_utf8_lossy(&ours.stderr)
        );
    }
    eprintln!("measuring PyTorch");
    let script = root().join("xtask/bench/models.py");
    let theirs = Command::new(PYTHON)
        .arg(&script)
        .args(&opts)
        .output()
        .context("running the PyTorch bench")?;
    if !theirs.status.success() {
        bail!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&theirs.stderr)
        );
    }
    let (ours, theirs) = (rows(&ours.stdout), rows(&theirs.stdout));
    let backend_ours = ours.first().map_or("vista", |r| r.3.as_str());
    let backend_theirs = theirs.first().map_or("torch", |r| r.3.as_str());
    println!(
        "training step (forward + cross-entropy + backward), batch {}, img/s",
        opts[3]
    );
    println!("| model | size | vista ({backend_ours}) | PyTorch ({backend_theirs}) | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for (model, size, rate, _) in &ours {
        let other = theirs
            .iter()
            .find(|r| &r.0 == model && &r.1 == size)
            .and_then(|r| r.2);
        let show = |r: Option<f64>| r.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let ratio = match (rate, other) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "n/a".into(),
        };
        println!(
            "| {model} | {size} | {} | {} | {ratio} |",
            show(*rate),
            show(other)
        );
    }
    Ok(())
}
