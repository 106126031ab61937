"""The Distiller inside MMEngine's Runner: checkpoints, resume, teacher."""
import copy
import os.path as osp

import pytest
import torch
from distkd_testing import (runner_cfg, save_teacher, tiny_classifier,
                            tiny_distiller)
from mmengine.registry import MODELS
from mmengine.runner import Runner


def train(cfg: dict) -> Runner:
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    return runner


@pytest.mark.slow
def test_runner_checkpoint_has_no_teacher_and_resumes_to_same_weights(
        imagenet_root, tmp_path):
    ckpt = save_teacher(str(tmp_path / 'teacher.pth'))
    full = train(
        runner_cfg(imagenet_root, str(tmp_path / 'full'),
                   tiny_distiller(teacher_ckpt=ckpt), 2))
    saved = torch.load(
        osp.join(tmp_path, 'full', 'epoch_1.pth'), weights_only=False)
    keys = list(saved['state_dict'])
    assert any(k.startswith('student.') for k in keys)
    assert not any(k.startswith('teacher.') for k in keys)

    cfg = runner_cfg(imagenet_root, str(tmp_path / 'resumed'),
                     tiny_distiller(teacher_ckpt=ckpt), 2)
    cfg.update(
        resume=True, load_from=osp.join(tmp_path, 'full', 'epoch_1.pth'))
    resumed = train(cfg)
    assert resumed.epoch == 2
    final, expected = resumed.model.state_dict(), full.model.state_dict()
    assert final.keys() == expected.keys()
    for key in final:
        assert torch.allclose(
            final[key].float(), expected[key].float(), atol=1e-6), key
    # The teacher came back from its own checkpoint, not from the resume.
    teacher = torch.load(ckpt, weights_only=True)['state_dict']
    for key, value in resumed.model.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key


def test_teacher_checkpoint_is_loaded_strictly_with_the_keys_listed(tmp_path):
    path = str(tmp_path / 'teacher.pth')
    state = MODELS.build(tiny_classifier(8)).state_dict()
    state['head.extra.weight'] = torch.zeros(1)
    del state['head.fc.bias']
    torch.save({'state_dict': state}, path)
    with pytest.raises(RuntimeError) as info:
        MODELS.build(tiny_distiller(teacher_ckpt=path))
    message = str(info.value)
    assert 'missing keys (1): head.fc.bias' in message
    assert 'unexpected keys (1): head.extra.weight' in message
    # teacher_strict=False loads what fits.
    model = MODELS.build(
        tiny_distiller(teacher_ckpt=path, teacher_strict=False))
    assert torch.equal(model.teacher.head.fc.weight, state['head.fc.weight'])


def test_teacher_from_a_config_file_and_a_checkpoint_file(tmp_path):
    cfg_file = tmp_path / 'teacher_cfg.py'
    cfg_file.write_text(f'model = {tiny_classifier(8)!r}\n')
    ckpt = save_teacher(str(tmp_path / 'teacher.pth'), seed=3)
    model = MODELS.build(
        tiny_distiller(teacher=str(cfg_file), teacher_ckpt=ckpt))
    expected = torch.load(ckpt, weights_only=True)['state_dict']
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_teacher_from_a_package_config_builds_in_its_scope():
    # mmpretrain's own recipe, by `pkg::` path, with no checkpoint.
    model = MODELS.build(
        tiny_distiller(
            student=tiny_classifier(4, num_classes=1000),
            teacher='mmpretrain::resnet/resnet18_8xb32_in1k.py'))
    assert type(model.teacher).__name__ == 'ImageClassifier'
    assert model.teacher.head.fc.out_features == 1000
    assert not model.teacher.training
