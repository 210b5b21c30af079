//! Layer groups for fine-tuning, as fastai's `Learner.freeze` / `unfreeze` and its
//! discriminative learning rates use them: each model splits into body groups (early,
//! late) and the head, so training can freeze the body, then give each group its own
//! learning rate (`GradientsParams::from_params` with a group's ids, one optimizer step
//! per group).

use burn::module::{Module, ModuleMapper, Param, ParamId, list_param_ids};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::efficientnet::EfficientNetLite;
use crate::inception::InceptionV3;
use crate::resnet::ResNet;

/// Sets whether every float parameter of a module takes gradients.
#[derive(Debug)]
struct RequireGrad(bool);

impl<B: Backend> ModuleMapper<B> for RequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        // Detached first: a parameter loaded from a record can be the output of a
        // device move in the autodiff graph, and only leaves can require gradients.
        param.map(|t| t.detach()).set_require_grad(self.0)
    }
}

/// Makes a (sub)module trainable or frozen.
pub fn set_trainable<B: Backend, M: Module<B>>(module: M, trainable: bool) -> M {
    module.map(&mut RequireGrad(trainable))
}

/// A model that can be fine-tuned group by group.
pub trait LayerGroups<B: Backend>: Module<B> + Sized {
    /// Parameter ids per group, from the input side to the head; the last group is the head.
    fn layer_groups(&self) -> Vec<Vec<ParamId>>;

    /// Freezes everything but the head (fastai's `freeze`).
    fn freeze_body(self) -> Self;

    /// Makes every parameter trainable again (fastai's `unfreeze`).
    fn unfreeze(self) -> Self {
        set_trainable(self, true)
    }
}

impl<B: Backend> LayerGroups<B> for ResNet<B> {
    fn layer_groups(&self) -> Vec<Vec<ParamId>> {
        let early = [
            list_param_ids(&self.conv1),
            list_param_ids(&self.bn1),
            list_param_ids(&self.layer1),
            list_param_ids(&self.layer2),
        ]
        .concat();
        let late = [list_param_ids(&self.layer3), list_param_ids(&self.layer4)].concat();
        let head = [list_param_ids(&self.fc), list_param_ids(&self.head)].concat();
        vec![early, late, head]
    }

    fn freeze_body(self) -> Self {
        let all = set_trainable(self, false);
        Self {
            fc: all.fc.map(|m| set_trainable(m, true)),
            head: all.head.map(|m| set_trainable(m, true)),
            ..all
        }
    }
}

impl<B: Backend> LayerGroups<B> for EfficientNetLite<B> {
    fn layer_groups(&self) -> Vec<Vec<ParamId>> {
        let (a, b) = self.blocks.split_at(self.blocks.len() / 2);
        let early: Vec<ParamId> = list_param_ids(&self.conv_stem)
            .into_iter()
            .chain(list_param_ids(&self.bn0))
            .chain(a.iter().flat_map(list_param_ids))
            .collect();
        let late: Vec<ParamId> = b
            .iter()
            .flat_map(list_param_ids)
            .chain(list_param_ids(&self.conv_head))
            .chain(list_param_ids(&self.bn1))
            .collect();
        vec![early, late, list_param_ids(&self.fc)]
    }

    fn freeze_body(self) -> Self {
        let all = set_trainable(self, false);
        Self {
            fc: set_trainable(all.fc, true),
            ..all
        }
    }
}

impl<B: Backend> LayerGroups<B> for InceptionV3<B> {
    fn layer_groups(&self) -> Vec<Vec<ParamId>> {
        let early = [
            list_param_ids(&self.conv2d_1a_3x3),
            list_param_ids(&self.conv2d_2a_3x3),
            list_param_ids(&self.conv2d_2b_3x3),
            list_param_ids(&self.conv2d_3b_1x1),
            list_param_ids(&self.conv2d_4a_3x3),
            list_param_ids(&self.mixed_5b),
            list_param_ids(&self.mixed_5c),
            list_param_ids(&self.mixed_5d),
        ]
        .concat();
        let late = [
            list_param_ids(&self.mixed_6a),
            list_param_ids(&self.mixed_6b),
            list_param_ids(&self.mixed_6c),
            list_param_ids(&self.mixed_6d),
            list_param_ids(&self.mixed_6e),
            list_param_ids(&self.mixed_7a),
            list_param_ids(&self.mixed_7b),
            list_param_ids(&self.mixed_7c),
        ]
        .concat();
        let head = [
            list_param_ids(&self.aux_logits),
            list_param_ids(&self.fc),
            list_param_ids(&self.head),
        ]
        .concat();
        vec![early, late, head]
    }

    fn freeze_body(self) -> Self {
        let all = set_trainable(self, false);
        Self {
            fc: set_trainable(all.fc, true),
            aux_logits: all.aux_logits.map(|m| set_trainable(m, true)),
            ..all
        }
    }
}
