//! The options of `cargo xtask reproduce`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::util::{Profile, root};

const HELP: &str = "\
usage: cargo xtask reproduce [options]

  --data PATH      a Kaggle or Analytics Vidhya download (default: the embedded Fashion-MNIST)
  --out DIR        run folder (default: runs/reproduce, or runs/reproduce-smoke)
  --device DEV     cpu (default) or cuda:N (builds vista with --features cuda and uses the
                   article's preset: ResNet-50 64 -> 128 -> 150 px, Inception v3)
  --weights FILE   pretrained weights for model A's body (e.g. Places365 ResNet-50 .pth.tar)
  --seed N         seed of every random choice (default 42)
  --smoke          a few hundred images, one epoch per stage: checks the pipeline end to end
  --check          compare the scores with xtask/reproduce-expected.json; fail outside tolerance
  --fresh          redo every stage, even those finished before
  --profile NAME   cargo profile of the vista binary: release (default) or dev (the test
                   suite's build, which CI's smoke run reuses; slower, same numbers)
";

#[derive(Debug)]
pub(super) struct Options {
    pub(super) data: String,
    pub(super) out: PathBuf,
    pub(super) device: String,
    pub(super) weights: Option<PathBuf>,
    pub(super) seed: u64,
    pub(super) fresh: bool,
    pub(super) smoke: bool,
    pub(super) check: bool,
    pub(super) profile: Profile,
}

pub(super) fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        data: "embedded".into(),
        out: PathBuf::new(),
        device: "cpu".into(),
        weights: None,
        seed: 42,
        fresh: false,
        smoke: false,
        check: false,
        profile: Profile::Release,
    };
    let mut out = None;
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
            "--device" => o.device = value()?,
            "--weights" => o.weights = Some(PathBuf::from(value()?)),
            "--seed" => o.seed = value()?.parse().context("--seed takes an integer")?,
            "--fresh" => o.fresh = true,
            "--smoke" => o.smoke = true,
            "--check" => o.check = true,
            "--profile" => o.profile = Profile::parse(&value()?)?,
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
    let default_out = if o.smoke {
        "runs/reproduce-smoke"
    } else {
        "runs/reproduce"
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
    fn smoke_runs_only_on_the_embedded_data() {
        let args: Vec<String> = ["--smoke", "--data", "x"].map(String::from).to_vec();
        assert!(parse(&args).is_err());
    }
}
