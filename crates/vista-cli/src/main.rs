//! The `vista` command line: the one binary users run; it names the concrete backends.

mod backend;
mod bench;
mod clean;
mod data;
mod eval;
mod export;
mod gan;
mod observe;
mod paths;
mod train;
mod weights;

use clap::{Parser, Subcommand};

/// vista: competition tricks for image classifiers, in Rust.
#[derive(Debug, Parser)]
#[command(name = "vista", version, about)]
struct Cli {
    /// Hide progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect, check and prepare datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Inspect pretrained weights.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
    /// Measure training-step throughput of the architectures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Show the compiled-in backends and run a small computation on a device.
    Device(backend::DeviceArgs),
    /// Train a classifier: progressive resizing, one-cycle, mixup, fine-tuning, checkpoints.
    Train(train::TrainArgs),
    /// Run the LR finder and plot loss against learning rate with fastai's suggestions.
    LrFind(train::LrFindArgs),
    /// Write per-image class probabilities of image files, folders or a dataset's split
    /// with a trained run, optionally with test-time augmentation.
    Predict(eval::PredictArgs),
    /// Write a finished run's model for other tools: safetensors with PyTorch's names.
    Export(export::ExportArgs),
    /// Score a prediction file: accuracy, per-class scores, confusion matrix, top losses.
    Evaluate(eval::EvaluateArgs),
    /// Combine prediction files by majority vote (random tie-break) or mean.
    Ensemble(eval::EnsembleArgs),
    /// Write a competition submission from a prediction file.
    Submit(eval::SubmitArgs),
    /// Find confusing training images and leave them out, undoably.
    #[command(subcommand)]
    Clean(clean::CleanCommand),
    /// Review flagged images in the browser: keep, relabel or remove each.
    Review(clean::ReviewArgs),
    /// Train a Wasserstein GAN and write its images as extra training data.
    #[command(subcommand)]
    Gan(gan::GanCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Images per second of a training step (forward, loss, backward, SGD step) or of
    /// inference, per model and size.
    Models(bench::BenchArgs),
    /// Images per second of the loader's work (read, decode, augment, batch) on a folder.
    Data(bench::DataBenchArgs),
}

/// mimalloc keeps freed pages for reuse: with glibc's allocator the im2col buffers of
/// every convolution went back to the system and were faulted in again on the next
/// step (ARCHITECTURE.md's "Performance" gives the measured gain).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (its index in mimalloc 3's `mi_option_t`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed pages to the system (`purge_delay` = -1). A
/// training step frees and reallocates the same large buffers; returned pages came back
/// as fresh huge pages the kernel zeroed, a measurable share of a step's time
/// (ARCHITECTURE.md's "Performance"). Memory stays at the run's peak.
#[allow(unsafe_code)]
fn keep_freed_pages() {
    // SAFETY: sets one integer option of the allocator this binary links; mimalloc reads
    // options atomically and this runs before any other thread starts.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

fn main() {
    keep_freed_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(cmd) => data::run(cmd, !cli.quiet),
        Command::Device(args) => backend::run(&args),
        Command::Weights(cmd) => weights::run(cmd),
        Command::Bench(BenchCommand::Models(args)) => bench::run(&args),
        Command::Bench(BenchCommand::Data(args)) => bench::run_data(&args),
        Command::Train(args) => train::run_train(&args, !cli.quiet),
        Command::LrFind(args) => train::run_lr_find(&args, !cli.quiet),
        Command::Predict(args) => eval::run_predict(&args, !cli.quiet),
        Command::Export(args) => export::run(&args),
        Command::Evaluate(args) => eval::run_evaluate(&args, !cli.quiet),
        Command::Ensemble(args) => eval::run_ensemble(&args),
        Command::Submit(args) => eval::run_submit(&args, !cli.quiet),
        Command::Clean(cmd) => clean::run_clean(&cmd, !cli.quiet),
        Command::Review(args) => clean::run_review(&args, !cli.quiet),
        Command::Gan(cmd) => gan::run(&cmd, !cli.quiet),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        if let Some(hint) = advice(&err) {
            eprintln!("hint: {hint}");
        }
        std::process::exit(1);
    }
}

/// What to do about an error, in the command line's terms: the libraries say what went
/// wrong in theirs, and only the binary knows its flags.
fn advice(err: &anyhow::Error) -> Option<&'static str> {
    use vista_train::Error as E;
    err.chain().find_map(|cause| match cause.downcast_ref::<E>()? {
        E::RunExists { .. } => {
            Some("pass --resume to carry it on, or choose another output folder (--out)")
        }
        E::ResumeSettingsDiffer { .. } => Some(
            "resume with the settings the run was started with (a GAN may change only --epochs), or start a new run in another --out folder",
        ),
        E::ResumeDataDiffers { .. } => {
            Some("resume on the data the run trained on, or start a new run in another --out folder")
        }
        E::OutputExists { .. } => Some("choose a new --out folder"),
        E::NoGenerator { .. } => Some("finish `vista gan train` (or resume it with --resume) first"),
        E::AlreadyTrained { .. } => Some("ask for at least as many --epochs as the run has trained"),
        E::TooFewImages { .. } => {
            Some("lower --batch-size or --critic-steps, or train on more images (--images)")
        }
        E::NotEnoughExtra { .. } => {
            Some("lower --extra-ratio, or generate more images (`vista gan sample --per-class`)")
        }
        E::InitMismatch { .. } => Some(
            "--init-from takes a finished run of the same model (--arch, --width, --small-stem) and classes",
        ),
        _ => None,
    })
    .or_else(|| {
        err.chain().find_map(|cause| match cause.downcast_ref::<vista_data::Error>()? {
            vista_data::Error::BadImages { .. } => Some(
                "`--on-bad-image skip` leaves the listed files out and goes on; `vista data check` lists them",
            ),
            _ => None,
        })
    })
}
