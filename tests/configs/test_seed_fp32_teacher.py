"""The seed's fp32 teacher is stated once (configs/_base_/
seed_fp32_teacher.py), every seed-protocol config ends with it, and a
config inheriting one can still choose another precision."""
import glob
import os.path as osp

import pytest
from distkd_testing import REPO
from mmengine.config import Config

FRAGMENT = osp.join(REPO, 'configs', '_base_', 'seed_fp32_teacher.py')
TASKS = ('mmpretrain', 'mmdet', 'mmseg')
# Rows that are no seed protocol keep the Distiller's default ('auto').
DEFAULT_PRECISION = {
    'dist_swin-l_swin-t_16xb64-300e_in1k.py',  # no published recipe
    'dist_deeplabv3-r101_deeplabv3-r18_4xb2-80k_cityscapes-512x1024.py',
    'dist_deeplabv3-r101_pspnet-r18_4xb2-80k_cityscapes-512x1024.py',
}
LEAVES = sorted(
    path for task in TASKS
    for path in glob.glob(osp.join(REPO, 'configs', task, '*.py')))


@pytest.fixture(scope='module')
def built() -> dict:
    """Every leaf config of the three tasks, as MMEngine builds it."""
    return {osp.basename(p): Config.fromfile(p) for p in LEAVES}


# Builds all 50 configs; MMEngine re-reads every package's metafiles for
# each `pkg::` base (~30 s on 2 cores).
@pytest.mark.slow
def test_every_seed_config_ends_with_the_fragments_fp32_teacher(built):
    assert DEFAULT_PRECISION <= set(built) and len(built) > 40
    for name, cfg in built.items():
        if name in DEFAULT_PRECISION:
            assert 'teacher_autocast' not in cfg.model, name
        else:
            # The value came from the fragment, not from a copy of it.
            assert cfg.seed_teacher_autocast is None, name
            assert cfg.model.teacher_autocast is None, name


@pytest.mark.parametrize('seed', [
    'mmpretrain/dist_r34_r18_8xb32-100e_in1k.py',
    'mmdet/dist_retinanet-x101_retinanet-r50_8xb2-2x_coco.py',
])
def test_a_leaf_of_a_seed_config_can_choose_the_teachers_precision(
        tmp_path, seed):
    leaf = tmp_path / 'bf16_teacher.py'
    leaf.write_text(f"_base_ = {osp.join(REPO, 'configs', seed)!r}\n"
                    "model = dict(teacher_autocast='bf16')\n")
    cfg = Config.fromfile(str(leaf))
    assert cfg.model.teacher_autocast == 'bf16'
    assert cfg.model.type == 'Distiller'  # the rest of the seed's model
    # As `--cfg-options model.teacher_autocast=...` does.
    cfg.merge_from_dict({'model.teacher_autocast': 'fp16'})
    assert cfg.model.teacher_autocast == 'fp16'


def test_fp32_is_written_in_the_fragment_only():
    sources = glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    writers = [
        osp.relpath(p, REPO) for p in sources if p != FRAGMENT
        and 'teacher_autocast=None' in open(p).read().replace(' ', '')
    ]
    assert writers == []
    with open(FRAGMENT) as f:
        assert 'seed_teacher_autocast = None' in f.read()
