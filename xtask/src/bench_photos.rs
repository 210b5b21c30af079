//! `cargo xtask bench photos`: peak memory and epoch time of `vista train` on a folder of
//! phone-sized photos, against an in-memory cache of the same images already downscaled.
//!
//! It writes `--n` 12-megapixel (4000x3000) JPEGs in four class folders: a few distinct
//! pictures (gradients, shapes and grain, so they compress as photos do, 2-4 MB each),
//! each stored once and hard-linked under the other names, so the folder takes little
//! disk while every file is decoded on its own. Then, with the release binary:
//! 1. `vista train` on the photos with `--cache-mb` (default 512): the decoded images
//!    past the budget are read back from a spill file;
//! 2. `vista train` on the same pictures saved as PNGs already at the decoded size
//!    (`--max-side`'s default, 258 px on the shorter side), all held in memory.
//!
//! Both train one epoch at 224 px with the same recipe. Printed: each run's peak
//! resident memory (from `/usr/bin/time`), its total time and its epoch time, and the
//! ratio of the epoch times.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::{Rgb, RgbImage};
use vista_format::{EpochMetrics, RunDir, read_json};

use crate::util::{Profile, build_vista, root};

const CLASSES: [&str; 4] = ["beach", "forest", "street", "snow"];
/// Distinct pictures per class.
const DISTINCT: usize = 3;
const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
/// `vista train`'s default decode bound for training at 224 px (`cache_side(224)`).
const DECODED_SIDE: u32 = 258;

struct Args {
    n: usize,
    cache_mb: u64,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        n: 10_000,
        cache_mb: 512,
        out: root().join("target/bench-photos"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--n" => parsed.n = value()?.parse().context("--n")?,
            "--cache-mb" => parsed.cache_mb = value()?.parse().context("--cache-mb")?,
            "--out" => parsed.out = PathBuf::from(value()?),
            other => bail!("unknown flag {other} (--n N, --cache-mb MB, --out DIR)"),
        }
    }
    if parsed.n < CLASSES.len() * DISTINCT {
        bail!("--n must be at least {}", CLASSES.len() * DISTINCT);
    }
    Ok(parsed)
}

pub fn run(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    let bin = build_vista(Profile::Release, false)?;
    let photos = args.out.join(format!("photos-{}", args.n));
    let small = args.out.join(format!("decoded-{}", args.n));
    write_folders(&photos, &small, args.n)?;
    let spilled = train(
        &bin,
        &photos,
        &args.out.join("run-photos"),
        Some(args.cache_mb),
    )?;
    // A budget no dataset here reaches: every image stays in memory.
    let in_memory = train(&bin, &small, &args.out.join("run-decoded"), Some(1 << 20))?;
    println!(
        "\n{} photos of {WIDTH}x{HEIGHT}, one epoch at 224 px ({})",
        args.n,
        crate::util::machine()
    );
    println!(
        "{:<44} {:>12} {:>10} {:>10}",
        "run", "peak RSS", "total", "epoch"
    );
    for (name, r) in [
        (
            format!("12-MP JPEGs, --cache-mb {}", args.cache_mb),
            &spilled,
        ),
        (format!("{DECODED_SIDE}-px PNGs, all in memory"), &in_memory),
    ] {
        println!(
            "{name:<44} {:>9} MB {:>9.1}s {:>9.1}s",
            r.peak_kb / 1024,
            r.total_s,
            r.epoch_s
        );
    }
    println!(
        "epoch time, spilled / in memory: {:.2}x",
        spilled.epoch_s / in_memory.epoch_s
    );
    Ok(())
}

struct Measured {
    peak_kb: u64,
    total_s: f64,
    epoch_s: f64,
}

/// One epoch of `vista train` at 224 px under `/usr/bin/time`.
fn train(bin: &Path, data: &Path, out: &Path, cache_mb: Option<u64>) -> Result<Measured> {
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "peak_kb=%M"]).arg(bin).args([
        "train",
        "--data",
        &data.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "--sizes",
        "224",
        "--epochs",
        "1",
        "--seed",
        "1",
    ]);
    if let Some(mb) = cache_mb {
        cmd.args(["--cache-mb", &mb.to_string()]);
    }
    eprintln!("$ {cmd:?}");
    let start = Instant::now();
    let output = cmd
        .stdout(std::process::Stdio::inherit())
        .output()
        .context("running /usr/bin/time (Debian's `time` package)")?;
    let total_s = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    if !output.status.success() {
        bail!("vista train on {} failed", data.display());
    }
    let peak_kb = (stderr.lines())
        .find_map(|l| l.strip_prefix("peak_kb="))
        .and_then(|v| v.trim().parse().ok())
        .context("/usr/bin/time printed no peak")?;
    let rows: Vec<EpochMetrics> = read_json(&RunDir::new(out).metrics_json())?;
    let epoch_s = f64::from(rows.last().context("no epoch")?.wall_s);
    Ok(Measured {
        peak_kb,
        total_s,
        epoch_s,
    })
}

/// Writes the photo folder (hard links to a few distinct JPEGs) and the folder of the
/// same pictures at their decoded size; folders already complete are kept.
fn write_folders(photos: &Path, small: &Path, n: usize) -> Result<()> {
    let done = photos.join(".complete");
    if done.exists() && small.join(".complete").exists() {
        return Ok(());
    }
    for dir in [photos, small] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
    }
    let originals = photos.join(".originals");
    std::fs::create_dir_all(&originals)?;
    eprintln!(
        "writing {} distinct {WIDTH}x{HEIGHT} JPEGs",
        CLASSES.len() * DISTINCT
    );
    for (c, class) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(photos.join(class))?;
        std::fs::create_dir_all(small.join(class))?;
        for d in 0..DISTINCT {
            let img = picture(c, d);
            let file = originals.join(format!("{class}-{d}.jpg"));
            let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                .encode_image(&img)
                .with_context(|| format!("writing {}", file.display()))?;
            drop(out);
            let short = DECODED_SIDE;
            let long = (f64::from(WIDTH) * f64::from(short) / f64::from(HEIGHT)).round() as u32;
            let decoded = image::open(&file)?.to_rgb8();
            image::imageops::resize(&decoded, long, short, image::imageops::FilterType::Lanczos3)
                .save(small.join(class).join(format!("{d}.png")))?;
        }
    }
    for i in 0..n {
        let (c, d) = (i % CLASSES.len(), (i / CLASSES.len()) % DISTINCT);
        let class = CLASSES[c];
        let from = originals.join(format!("{class}-{d}.jpg"));
        std::fs::hard_link(&from, photos.join(class).join(format!("{i:05}.jpg")))?;
        let png = small.join(class).join(format!("{d}.png"));
        let to = small.join(class).join(format!("{i:05}.png"));
        if i >= CLASSES.len() * DISTINCT {
            std::fs::hard_link(&png, &to)?;
        } else {
            std::fs::copy(&png, &to)?;
        }
    }
    // The seed files themselves are not part of the set.
    for class in CLASSES {
        for d in 0..DISTINCT {
            std::fs::remove_file(small.join(class).join(format!("{d}.png")))?;
        }
    }
    std::fs::write(&done, b"")?;
    std::fs::write(small.join(".complete"), b"")?;
    Ok(())
}

/// A 4000x3000 picture of class `c`, variant `d`: a sky-to-ground gradient in the class's
/// colours, a few discs and bars, and grain.
fn picture(c: usize, d: usize) -> RgbImage {
    let palette: [[f32; 3]; 4] = [
        [70.0, 150.0, 220.0],
        [40.0, 120.0, 50.0],
        [120.0, 110.0, 100.0],
        [230.0, 235.0, 245.0],
    ];
    let base = palette[c];
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ ((c as u64) << 32 | d as u64);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let discs: Vec<(f32, f32, f32)> = (0..6)
        .map(|k| {
            let k = k as f32 + d as f32 * 6.0;
            (
                (k * 733.0) % WIDTH as f32,
                (k * 417.0) % HEIGHT as f32,
                150.0 + (k * 97.0) % 400.0,
            )
        })
        .collect();
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let t = yf / HEIGHT as f32;
        let mut px = [0f32; 3];
        for (ch, v) in px.iter_mut().enumerate() {
            *v = base[ch] * (0.6 + 0.6 * t) + 30.0 * ((xf / 300.0 + ch as f32).sin());
        }
        for &(cx, cy, r) in &discs {
            if (xf - cx).powi(2) + (yf - cy).powi(2) < r * r {
                px = [255.0 - px[0], px[1] * 0.5, px[2] * 0.8];
            }
        }
        let grain = noise() * 24.0;
        Rgb(px.map(|v| (v + grain).clamp(0.0, 255.0) as u8))
    })
}
