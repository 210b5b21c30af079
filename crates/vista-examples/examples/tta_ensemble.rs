//! The article's last two tricks with vista's library: test-time augmentation and a
//! majority vote of several models with a seeded random tie-break. Three small
//! ResNet-18s (different seeds) are trained on Fashion-MNIST; each predicts 500 test
//! images plainly and with flip TTA, and the three vote either way. (Flips tend to cost
//! accuracy here: Fashion-MNIST's shoes all face one way. On scenes, as in the article,
//! they help.)
//!
//! `cargo run -p vista-examples --release --example tta_ensemble`

use std::path::PathBuf;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use vista_data::{Loader, LoaderConfig, normalize_from_images, stratified_split};
use vista_eval::{
    Method, PredictOptions, Predictions, Tta, ensemble, evaluate, predict_images, read_labels,
};
use vista_examples::{cpu_shards, fashion_mnist_sample};
use vista_models::{Arch, ModelConfig};
use vista_train::{Learner, LearnerConfig};

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let loaded = fashion_mnist_sample(dir.path(), 1500, 500)?;
    let classes = loaded.dataset.classes.classes.clone();
    let k = classes.len();
    let labels: Vec<u32> = loaded.dataset.train.iter().map(|s| s.label).collect();
    // The test images are unlabelled; their answers are kept apart, as in a competition.
    let answers = read_labels(
        &loaded.dataset.root.join("answers/test_labels.csv"),
        &classes,
    )?;
    let names = vista_data::row_names(&loaded.dataset.root, &loaded.dataset.unlabelled);
    let normalize = normalize_from_images(loaded.train.iter());
    let (images, labels) = (loaded.train, Arc::new(labels));
    let devices = vec![Default::default(); cpu_shards()];

    let (mut plain, mut flipped) = (Vec::new(), Vec::new());
    for seed in [1, 2, 3] {
        let (train_items, valid_items) = stratified_split(&labels, 0.2, seed);
        let train_cfg = LoaderConfig::train(64, None, None, normalize, seed);
        let train = Loader::new(
            images.clone(),
            labels.clone(),
            train_items,
            train_cfg.clone(),
        );
        let valid = Loader::new(
            images.clone(),
            labels.clone(),
            valid_items,
            train_cfg.for_valid(),
        );
        let model = ModelConfig {
            arch: Arch::Resnet18,
            num_classes: k,
            width: 0.125,
            small_stem: true,
            ..ModelConfig::default()
        }
        .init_seeded::<B>(seed, &Default::default())?;
        let cfg = LearnerConfig {
            seed,
            ..LearnerConfig::new(k)
        };
        let mut learn = Learner::new(model, train, valid, cfg, devices.clone());
        learn.fit_one_cycle(2, 1e-2, 28)?;
        let model = learn.into_model().valid();

        for tta in [Tta::None, Tta::Flip] {
            let opts = PredictOptions {
                tta: tta.clone(),
                ..PredictOptions::for_run(28, Some(normalize), seed)
            };
            let indices: Vec<u64> = (0..loaded.unlabelled.len() as u64).collect();
            let probs = predict_images(&model, &devices, &loaded.unlabelled, &indices, k, &opts);
            let mut preds = Predictions::from_probs(classes.clone(), names.clone(), None, probs);
            preds.attach_labels(&answers)?;
            let accuracy = evaluate(&preds, 0)?.accuracy;
            println!(
                "model {seed}, TTA {:<5} test accuracy {accuracy:.3}",
                tta.name()
            );
            let member = (PathBuf::from(format!("model-{seed}")), preds);
            match tta {
                Tta::Flip => flipped.push(member),
                _ => plain.push(member),
            }
        }
    }
    for (name, members) in [("none", &plain), ("flip", &flipped)] {
        // Ties between the three models' classes are broken by a draw seeded per image.
        let vote = ensemble(members, &Method::Vote, 42)?;
        let accuracy = evaluate(&vote, 0)?.accuracy;
        println!("majority vote, TTA {name:<5} test accuracy {accuracy:.3}");
        anyhow::ensure!(accuracy > 0.5, "the ensemble did not learn");
    }
    Ok(())
}
