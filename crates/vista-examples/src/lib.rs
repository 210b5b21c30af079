//! Helpers shared by the examples in `examples/`: a sample of the embedded Fashion-MNIST
//! decoded into memory, the CPU's shard count, and an observer that prints each epoch.
//!
//! Run an example with `cargo run -p vista-examples --release --example fit_one_cycle`
//! (or `fine_tune`, `tta_ensemble`).

use std::path::{Path, PathBuf};

use vista_data::{LoadOptions, Loaded, fashion_mnist};
use vista_format::{EpochMetrics, Observer};

/// The repository's copy of Fashion-MNIST's IDX files.
pub fn fashion_mnist_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist")
}

/// The first `train` training and `test` test images of Fashion-MNIST, written as a
/// competition folder under `dir` (the Analytics Vidhya layout: the test images are
/// unlabelled, their answers in `answers/test_labels.csv`) and decoded.
pub fn fashion_mnist_sample(dir: &Path, train: usize, test: usize) -> anyhow::Result<Loaded> {
    let out = fashion_mnist::materialize(
        &fashion_mnist_source(),
        &dir.join("fashion-mnist"),
        &fashion_mnist::MaterializeOptions {
            train_limit: Some(train),
            test_limit: Some(test),
            ..Default::default()
        },
    )?;
    let opts = LoadOptions {
        include_unlabelled: true,
        ..LoadOptions::default()
    };
    Ok(vista_data::load(&out, &opts)?)
}

/// One data-parallel shard per core: burn-flex's kernels run on the calling thread.
pub fn cpu_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints each epoch's row of the metrics table, the header first.
#[derive(Debug, Default)]
pub struct PrintEpochs;

impl Observer for PrintEpochs {
    fn epoch(&self, m: &EpochMetrics) {
        if m.epoch == 1 {
            println!("{}", EpochMetrics::table_header());
        }
        println!("{}", m.table_row());
    }

    fn note(&self, text: &str) {
        println!("{text}");
    }
}
