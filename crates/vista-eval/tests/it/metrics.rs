//! Metrics against hand-computed values, and plots that render.

use vista_eval::{accuracy_interval, evaluate};
use vista_plot::{Tile, confusion_png, tiles_png};

use crate::preds;

#[test]
fn scores_match_a_hand_computed_example() {
    // Labels a a b b c; predictions a b b b a.
    let probs = vec![
        0.8, 0.1, 0.1, //
        0.3, 0.6, 0.1, //
        0.1, 0.8, 0.1, //
        0.2, 0.7, 0.1, //
        0.5, 0.2, 0.3,
    ];
    let p = preds(3, probs, Some(vec![0, 0, 1, 1, 2]));
    let e = evaluate(&p, 2).unwrap();
    assert!((e.accuracy - 0.6).abs() < 1e-12);
    assert_eq!(e.confusion.counts, vec![1, 1, 0, 0, 2, 0, 1, 0, 0]);
    // Class a: precision 1/2, recall 1/2; b: precision 2/3, recall 1; c: 0.
    assert!((e.per_class[0].precision - 0.5).abs() < 1e-12);
    assert!((e.per_class[1].precision - 2.0 / 3.0).abs() < 1e-12);
    assert!((e.per_class[1].recall - 1.0).abs() < 1e-12);
    assert!((e.per_class[1].f1 - 0.8).abs() < 1e-12);
    assert_eq!(e.per_class[2].f1, 0.0);
    assert_eq!(e.per_class[0].support, 2);
    assert_eq!(
        e.most_confused,
        vec![("a".into(), "b".into(), 1), ("c".into(), "a".into(), 1)]
    );
    // Top losses: c predicted a (-ln 0.3) and a predicted b (-ln 0.3); ties keep order.
    assert_eq!(e.top_losses.len(), 2);
    assert!((e.top_losses[0].loss - -(0.3f32).ln()).abs() < 1e-6);
    let mut losses: Vec<f32> = (0..5)
        .map(|i| -p.row(i)[p.labels.as_ref().unwrap()[i] as usize].ln())
        .collect();
    losses.sort_by(|a, b| b.total_cmp(a));
    assert!((e.top_losses[1].loss - losses[1]).abs() < 1e-6);
    let mean: f32 = losses.iter().sum::<f32>() / 5.0;
    assert!((e.log_loss - f64::from(mean)).abs() < 1e-6);
    assert!(e.to_text().contains("accuracy 0.6000"));
}

#[test]
fn predictions_without_labels_cannot_be_scored() {
    let err = evaluate(&preds(2, vec![0.5, 0.5], None), 5).unwrap_err();
    assert!(err.to_string().contains("no labels"), "{err}");
}

#[test]
fn the_accuracy_interval_is_clopper_pearson() {
    // R: binom.test(9, 10)$conf.int = 0.5549839 0.9974714
    let (lo, hi) = accuracy_interval(9, 10);
    assert!(
        (lo - 0.5549839).abs() < 1e-6 && (hi - 0.9974714).abs() < 1e-6,
        "{lo} {hi}"
    );
    assert_eq!(accuracy_interval(10, 10).1, 1.0);
    assert_eq!(accuracy_interval(0, 10).0, 0.0);
}

#[test]
fn the_heat_map_and_the_tile_grid_render() {
    let dir = tempfile::tempdir().unwrap();
    let p = preds(3, vec![0.8, 0.1, 0.1, 0.3, 0.6, 0.1], Some(vec![0, 0]));
    let e = evaluate(&p, 2).unwrap();
    let heat = dir.path().join("confusion.png");
    confusion_png(&heat, &e.confusion, &e.classes).unwrap();
    let img = image::open(&heat).unwrap().to_rgb8();
    assert!(img.width() > 200 && img.height() > 200);
    // The diagonal's full cell (1 of 1 `a` predicted `a`... here 1 of 2) is shaded.
    assert!(
        img.pixels().any(|p| p[2] > 150 && p[0] < 150),
        "no blue cell drawn"
    );
    let tiles = vec![
        Tile {
            image: image::RgbImage::from_pixel(28, 28, image::Rgb([200, 0, 0])),
            caption: vec!["a / b".into(), "p 0.60".into()],
        };
        3
    ];
    let grid = dir.path().join("top.png");
    tiles_png(&grid, "top losses", &tiles, 2, 64).unwrap();
    let img = image::open(&grid).unwrap().to_rgb8();
    let red = img.pixels().filter(|p| p[0] == 200 && p[1] == 0).count();
    assert_eq!(red, 3 * 64 * 64, "each tile is the image scaled to 64 px");
}
