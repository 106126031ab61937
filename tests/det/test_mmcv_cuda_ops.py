"""A detector Distiller on CUDA with an mmcv lacking CUDA kernels fails at
its first forward with the fix, not with mmcv's ``nms_impl ... not found``.

This CPU machine's mmcv really has no CUDA kernels, so the missing-kernel
path is the real one; only the device (``cuda:0``) is named, not used.
"""
import warnings

import pytest
import torch
from det_helpers import build_in_mmdet, det_samples, tiny_detector

from distkd_mm.utils.mmcv_ops import check_mmcv_ops, uses_mmcv_ops

RECIPE = 'retinanet/retinanet_r50_fpn_1x_coco.py'


def _mmcv_has_cuda_ops() -> bool:
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


@pytest.fixture(scope='module')
def distiller():
    cfg = dict(
        type='Distiller',
        student=tiny_detector(RECIPE),
        teacher=tiny_detector(RECIPE, width=16),
        distill_losses=dict(
            loss_dist=dict(
                student='bbox_head.retina_cls',
                teacher='bbox_head.retina_cls',
                loss=dict(type='DISTLoss', use_sigmoid=True))))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        return build_in_mmdet(cfg)


@pytest.mark.skipif(_mmcv_has_cuda_ops(), reason='this mmcv has CUDA kernels')
def test_detector_on_cuda_without_kernels_fails_with_the_fix(distiller):
    assert uses_mmcv_ops(distiller)
    with pytest.raises(RuntimeError) as err:
        check_mmcv_ops(distiller, 'cuda:0')
    msg = str(err.value)
    assert msg.startswith('`mmcv` should have CUDA ops to run Distiller on '
                          'cuda:0, but mmcv 2.1.0 was built with CPU ops '
                          'only; rebuild mmcv with CUDA ops on a GPU node: '
                          '`MMCV_WITH_OPS=1 FORCE_CUDA=1 pip install ')
    assert 'from a checkout: `MMCV_CUDA=1 make env`' in msg
    assert 'tools/check_env.py' in msg


def test_checked_at_the_first_forward_on_each_device(distiller):
    assert distiller._mmcv_ops_checked == set()
    batch = distiller.data_preprocessor(det_samples(), True)
    distiller.train()
    distiller(**batch, mode='loss')
    assert distiller._mmcv_ops_checked == {torch.device('cpu')}
    # The CPU needs no check: its ops are always compiled.
    check_mmcv_ops(distiller, 'cpu')


def test_models_without_mmcv_ops_are_not_checked():
    from distkd_testing import tiny_distiller
    from mmengine.registry import MODELS
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        model = MODELS.build(tiny_distiller())
    assert not uses_mmcv_ops(model)
    check_mmcv_ops(model, 'cuda:0')  # a classifier needs no mmcv kernels
