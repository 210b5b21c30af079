//! Fuzzes the dataset openers: the first byte picks which file of a small dataset the
//! rest of the input becomes (a `path,label` CSV, Analytics Vidhya's `train.csv`, its
//! `classes.txt`, or a shipped `vista-clean.json` view); opening the dataset must give
//! a dataset or an error, never a panic, and must write nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A valid 1x1 PNG, so listed files exist and decode.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        std::fs::write(root.join(class).join("0.png"), PNG).unwrap();
    }
    let target = match mode % 4 {
        0 => {
            std::fs::write(root.join("data.csv"), rest).unwrap();
            root.join("data.csv")
        }
        1 => {
            std::fs::create_dir_all(root.join("train")).unwrap();
            std::fs::write(root.join("train/0.png"), PNG).unwrap();
            std::fs::write(root.join("train.csv"), rest).unwrap();
            root.to_path_buf()
        }
        2 => {
            std::fs::create_dir_all(root.join("train")).unwrap();
            std::fs::write(root.join("train/0.png"), PNG).unwrap();
            std::fs::write(root.join("train.csv"), "image_name,label\n0.png,0\n").unwrap();
            std::fs::write(root.join("classes.txt"), rest).unwrap();
            root.to_path_buf()
        }
        _ => {
            std::fs::write(root.join(vista_data::VIEW_FILE), rest).unwrap();
            root.to_path_buf()
        }
    };
    let _ = vista_data::open(&target);
});
