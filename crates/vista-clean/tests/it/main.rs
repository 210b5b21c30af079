//! Integration tests of vista-clean: the rules, folds and noisy labels, manifests and
//! cleaned views, the review server's security, and the review page in a real browser.

mod browser;
mod detect;
mod hostile;
mod never_modified;
mod server;
mod view;

use std::path::Path;

use image::{Rgb, RgbImage};
use vista_clean::{Flag, Manifest, Reason, Rules};

/// An image-folder dataset: `cat/0.png, cat/1.png, dog/0.png, dog/1.png, owl/0.png`.
pub fn dataset(root: &Path) {
    for (class, n) in [("cat", 2), ("dog", 2), ("owl", 1)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..n {
            RgbImage::from_pixel(8, 8, Rgb([40 * i as u8, 100, 200]))
                .save(root.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
}

pub fn manifest(root: &Path, images: &[&str]) -> Manifest {
    Manifest {
        dataset: root.to_path_buf(),
        classes: ["cat", "dog", "owl"].map(String::from).to_vec(),
        rules: Rules::default(),
        predictions: "a test".into(),
        flags: images
            .iter()
            .map(|i| Flag {
                image: i.to_string(),
                given: "cat".into(),
                predicted: "dog".into(),
                probability: 0.95,
                reason: Reason::LikelyMislabelled,
            })
            .collect(),
    }
}
