//! A model exported for PyTorch holds the checkpoint it was loaded from: the same names
//! (torchvision's, EfficientNet-PyTorch's) and the same values, tensor for tensor.

use burn::backend::Flex;
use burn_store::{ModuleStore, SafetensorsStore};
use vista_models::{ImportOptions, TorchFile, inspect, to_safetensors};

use crate::{fixtures, repo};

type B = Flex;

#[test]
fn an_exported_model_has_its_checkpoints_names_and_values() {
    for path in [
        fixtures().join("resnet50_w16_places.pth.tar"),
        fixtures().join("resnet18_w8.pth"),
        fixtures().join("inception_v3_w16.pth"),
        repo().join("data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth"),
    ] {
        let config = inspect(&path)
            .unwrap()
            .guess
            .unwrap()
            .model_config()
            .unwrap();
        let (model, _) = config
            .init::<B>(&Default::default())
            .unwrap()
            .load_weights(&path, &ImportOptions::default())
            .unwrap();
        let bytes = to_safetensors(&model, &[("classes", "a,b")]).unwrap();
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let exported = store.get_all_snapshots().unwrap();

        let original = TorchFile::read(&path).unwrap();
        let mut compared = 0;
        for (key, t) in &original.tensors {
            if key.ends_with("num_batches_tracked") {
                continue;
            }
            let key = key.strip_prefix("state_dict.").unwrap_or(key);
            let key = key.strip_prefix("module.").unwrap_or(key);
            let Some(snapshot) = exported.get(key) else {
                panic!("{}: {key} is not in the export", path.display());
            };
            assert_eq!(snapshot.shape.to_vec(), t.shape, "{key}");
            let values = snapshot.to_data().unwrap().to_vec::<f32>().unwrap();
            assert!(
                values == original.to_f32(t).unwrap(),
                "{key}: values differ"
            );
            compared += 1;
        }
        assert_eq!(
            exported.len(),
            compared,
            "{}: extra tensors",
            path.display()
        );
    }
}
