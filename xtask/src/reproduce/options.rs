//! The options of `cargo xtask reproduce`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::util::{Profile, root};

const HELP: &str = "\
usage: cargo xtask reproduce [options]

  --data PATH      a Kaggle or Analytics Vidhya download (default: the embedded Fashion-MNIST)
  --out DIR        run folder (default: runs/reproduce, or runs/reproduce-smoke)
  --device DEV     cpu (default), cuda:N, or several GPUs cuda:0,cuda:1 (data-parallel;
                   builds vista with --features cuda); --devices is the same
  --preset NAME    article (default on CUDA): the article's recipe, a pretrained ResNet-50
                   fine-tuned at 64 -> 128 -> 150 px with mixup 0.4, Inception v3 (model B);
                   cpu (default elsewhere): ResNet-18/8 and Inception v3/8 sized for 2 cores
  --weights FILE   the article preset's pretrained ResNet-50 (the article used Places365's
                   resnet50_places365.pth.tar); without it model A trains from random init
  --width W        the article preset's channel multiplier for the models trained from
                   random init (default 1; 1/16 for --smoke on the CPU)
  --seed N         seed of every random choice (default 42)
  --smoke          a few hundred images, one epoch per stage: checks the pipeline end to end
  --check          compare the scores with xtask/reproduce-expected.json; fail outside tolerance
  --fresh          redo every stage, even those finished before
  --profile NAME   cargo profile of the vista binary: release (default) or dev (the test
                   suite's build, which CI's smoke run reuses; slower, same numbers)
  --vista BIN      run this vista binary instead of building one (a machine without cargo:
                   see `cargo xtask gpu-check`)
";

/// Which recipe a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PresetKind {
    /// The article's: a pretrained ResNet-50 at 64 -> 128 -> 150 px and Inception v3.
    Article,
    /// Small models sized for 2 CPU cores.
    Cpu,
}

#[derive(Debug)]
pub(super) struct Options {
    pub(super) data: String,
    pub(super) out: PathBuf,
    pub(super) device: String,
    pub(super) preset: PresetKind,
    pub(super) weights: Option<PathBuf>,
    /// The article preset's width for models from random init.
    pub(super) width: f64,
    pub(super) seed: u64,
    pub(super) fresh: bool,
    pub(super) smoke: bool,
    pub(super) check: bool,
    pub(super) profile: Profile,
    /// A `vista` binary built elsewhere (a GPU machine without cargo or network), run
    /// instead of building one.
    pub(super) vista: Option<PathBuf>,
}

pub(super) fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        data: "embedded".into(),
        out: PathBuf::new(),
        device: "cpu".into(),
        preset: PresetKind::Cpu,
        weights: None,
        width: 1.0,
        seed: 42,
        fresh: false,
        smoke: false,
        check: false,
        profile: Profile::Release,
        vista: None,
    };
    let mut out = None;
    let mut preset = None;
    let mut width = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--data" => o.data = value()?,
            "--out" => out = Some(PathBuf::from(value()?)),
            "--device" | "--devices" => o.device = value()?,
            "--weights" => o.weights = Some(PathBuf::from(value()?)),
            "--preset" => {
                preset = Some(match value()?.as_str() {
                    "article" => PresetKind::Article,
                    "cpu" => PresetKind::Cpu,
                    other => bail!("unknown preset `{other}` (article, cpu)"),
                })
            }
            "--width" => {
                let w: f64 = value()?.parse().context("--width takes a number")?;
                if !(w > 0.0 && w <= 1.0) {
                    bail!("--width takes a multiplier in (0, 1], not {w}");
                }
                width = Some(w);
            }
            "--seed" => o.seed = value()?.parse().context("--seed takes an integer")?,
            "--fresh" => o.fresh = true,
            "--smoke" => o.smoke = true,
            "--check" => o.check = true,
            "--profile" => o.profile = Profile::parse(&value()?)?,
            "--vista" => o.vista = Some(PathBuf::from(value()?)),
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n{HELP}"),
        }
    }
    if o.smoke && o.data != "embedded" {
        bail!("--smoke runs on a small part of the embedded data; leave out --data");
    }
    let cuda = o.device.starts_with("cuda");
    o.preset = preset.unwrap_or(if cuda {
        PresetKind::Article
    } else {
        PresetKind::Cpu
    });
    if o.preset == PresetKind::Cpu {
        if let Some(w) = &o.weights {
            bail!(
                "--weights {} is for the article preset (--preset article); the CPU preset \
                 trains ResNet-18/8 from random init",
                w.display()
            );
        }
        if width.is_some() {
            bail!("--width is for the article preset (--preset article)");
        }
    }
    o.width = width.unwrap_or(if o.smoke && !cuda { 1.0 / 16.0 } else { 1.0 });
    let default_out = match (o.preset, o.smoke) {
        (PresetKind::Cpu, true) => "runs/reproduce-smoke",
        (PresetKind::Cpu, false) => "runs/reproduce",
        (PresetKind::Article, true) => "runs/reproduce-article-smoke",
        (PresetKind::Article, false) => "runs/reproduce-article",
    };
    o.out = out.unwrap_or_else(|| root().join(default_out));
    Ok(o)
}

#[cfg(test)]
pub(super) fn options(args: &[&str]) -> Options {
    parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preset_follows_the_device_and_weights_need_the_article_preset() {
        assert_eq!(options(&[]).preset, PresetKind::Cpu);
        assert_eq!(options(&["--device", "cuda:0"]).preset, PresetKind::Article);
        let article = options(&["--preset", "article", "--smoke"]);
        assert_eq!(
            (article.preset, article.width),
            (PresetKind::Article, 1.0 / 16.0)
        );
        let args: Vec<String> = ["--weights", "r50.pth.tar"].map(String::from).to_vec();
        let err = parse(&args).unwrap_err().to_string();
        assert!(err.contains("--preset article"), "{err}");
        assert!(parse(&["--preset".into(), "gpu".into()]).is_err());
    }

    #[test]
    fn smoke_runs_only_on_the_embedded_data() {
        let args: Vec<String> = ["--smoke", "--data", "x"].map(String::from).to_vec();
        assert!(parse(&args).is_err());
    }
}
