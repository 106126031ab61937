"""EncoderDecoderHeads: the teacher runs its backbone and all its heads."""
import pytest
import torch
from mmengine.registry import MODELS, DefaultScope
from torch import nn

from distkd_mm.distillers.recorder import Recorder
from distkd_mm.distillers.teacher_forward import EncoderDecoderHeads


def build(cfg: dict) -> nn.Module:
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg).eval()


def test_mmseg_tensor_mode_skips_the_auxiliary_head(segmentor_cfg):
    # Why the teacher needs its own forward: mmseg's `tensor` mode runs the
    # decode head only, so an auxiliary tap would never fire.
    model = build(segmentor_cfg())
    taps = Recorder(model, ['decode_head.conv_seg', 'auxiliary_head.conv_seg'],
                    'teacher')
    with torch.no_grad(), taps as recorded:
        model(torch.randn(2, 3, 32, 64), mode='tensor')
    assert len(recorded['decode_head.conv_seg']) == 1
    assert recorded['auxiliary_head.conv_seg'] == []


@pytest.mark.parametrize('aux', [1, 2, None])
def test_heads_forward_runs_decode_and_every_auxiliary_head(
        segmentor_cfg, aux):
    model = build(segmentor_cfg(aux=aux))
    paths = ['decode_head.conv_seg', 'backbone']
    if aux == 1:
        paths.append('auxiliary_head.conv_seg')
    elif aux == 2:
        paths += ['auxiliary_head.0.conv_seg', 'auxiliary_head.1.conv_seg']
    taps = Recorder(model, paths, 'teacher')
    with torch.no_grad(), taps as recorded:
        outputs = EncoderDecoderHeads()(model, torch.randn(2, 3, 32, 64))
    assert len(outputs) == 1 + (aux or 0)
    for path in paths:
        assert len(recorded[path]) == 1, path
    # The heads' own resolution (1/8 of 32x64): no resize to the input.
    for out in outputs:
        assert out.shape == (2, 19, 4, 8)
    assert outputs[0] is recorded['decode_head.conv_seg'][0]


def test_heads_forward_computes_no_losses_and_reads_no_labels(
        segmentor_cfg, monkeypatch):
    model = build(segmentor_cfg())

    def fail(*args, **kwargs):
        raise AssertionError('the teacher computed a loss')

    for head in (model.decode_head, model.auxiliary_head):
        monkeypatch.setattr(head, 'loss', fail)
        monkeypatch.setattr(head, 'loss_by_feat', fail)
    with torch.no_grad():
        EncoderDecoderHeads()(model, torch.randn(1, 3, 32, 64), None)


def test_heads_forward_refuses_a_teacher_without_decode_head():
    teacher = nn.Linear(2, 2)
    with pytest.raises(TypeError, match='should be an mmseg EncoderDecoder'):
        EncoderDecoderHeads().attach(nn.Linear(2, 2), teacher)


def test_heads_forward_is_found_in_the_root_registry():
    # Child registries (mmseg's) find it through their parent.
    from mmseg.registry import MODELS as SEG_MODELS
    assert isinstance(
        SEG_MODELS.build(dict(type='EncoderDecoderHeads')),
        EncoderDecoderHeads)
