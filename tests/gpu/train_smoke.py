"""Train one seed config per task with tools/train.py, on generated data.

For a machine with a GPU and no network (.dev_scripts/gpu_check.sh runs it
there): the tests' data writers make tiny COCO / Cityscapes / digits data,
teachers get random weights saved as checkpoint files, the student's
download-only ``init_cfg`` is dropped, and each config trains a few
iterations through the repository's ``tools/train.py`` (the Runner picks
the GPU).

    python tests/gpu/train_smoke.py WORK_DIR [--tasks cls det seg]
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

import torch

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TESTS)
sys.path[:0] = [TESTS, osp.join(TESTS, 'det'), osp.join(TESTS, 'seg')]


def train(config: str, work_dir: str, *options: str) -> float:
    """``tools/train.py config``; returns the seconds it took."""
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if options:
        cmd += ['--cfg-options', *options]
    print('+', ' '.join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.perf_counter() - start


def cls(work: str) -> str:
    """The digits demo: a teacher, then a DIST student from it."""
    teacher_dir = osp.join(work, 'digits_teacher')
    epochs = 'train_cfg.max_epochs=2'
    train(
        osp.join(REPO, 'configs/demo/digits_teacher.py'), teacher_dir, epochs)
    ckpt = osp.join(teacher_dir, 'epoch_2.pth')
    train(
        osp.join(REPO, 'configs/demo/digits_dist.py'),
        osp.join(work, 'digits_dist'), epochs, f'model.teacher_ckpt={ckpt}')
    return ckpt


def det(work: str) -> None:
    """RetinaNet X101 -> R50 DIST on generated COCO data."""
    from det_helpers import (RETINA_DIST, TRAIN_SIZES, VAL_SIZES,
                             det_runner_cfg, write_coco)
    from distkd_testing import save_random_teacher
    from mmengine.config import Config
    root = osp.join(work, 'coco')
    write_coco(root, 'train', TRAIN_SIZES, seed=0)
    write_coco(root, 'val', VAL_SIZES, seed=1)
    ckpt = save_random_teacher(
        Config.fromfile(RETINA_DIST).model.teacher,
        osp.join(work, 'retina_teacher.pth'))
    cfg = det_runner_cfg(RETINA_DIST, root, osp.join(work, 'det'), ckpt)
    cfg.model.student.backbone.init_cfg = None  # torchvision:// download
    path = osp.join(work, 'retina.py')
    cfg.dump(path)
    train(path, cfg.work_dir)


def seg(work: str) -> None:
    """DeepLabV3 R101 -> R18 DIST on generated Cityscapes data."""
    from distkd_testing import load_tool, save_random_teacher
    from mmengine.config import Config
    from test_seg_configs import CONFIGS, DEEPLAB, shrink

    # By path: the tests folder's conftest.py shadows the seg folder's.
    write_cityscapes = load_tool(osp.join(TESTS, 'seg',
                                          'conftest.py')).write_cityscapes
    root = osp.join(work, 'cityscapes')
    write_cityscapes(root, 'train', 4, 128, 256, seed=0)
    write_cityscapes(root, 'val', 2, 128, 256, seed=1)
    config = osp.join(CONFIGS, DEEPLAB)
    cfg = Config.fromfile(config)
    ckpt = save_random_teacher(cfg.model.teacher,
                               osp.join(work, 'seg_teacher.pth'))
    shrink(cfg, root)
    cfg.model.teacher_ckpt = ckpt
    cfg.model.student.pretrained = None  # open-mmlab:// download
    cfg.train_cfg.update(max_iters=4, val_interval=4)
    cfg.default_hooks.checkpoint.interval = 4
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.teacher_gate.enable = False  # a random teacher
    path = osp.join(work, 'seg.py')
    cfg.dump(path)
    train(path, osp.join(work, 'seg'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument(
        '--tasks',
        nargs='+',
        default=['cls', 'det', 'seg'],
        choices=['cls', 'det', 'seg'])
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    print(
        'torch',
        torch.__version__,
        'cuda available',
        torch.cuda.is_available(),
        flush=True)
    failed = []
    for task in args.tasks:
        start = time.perf_counter()
        try:
            globals()[task](osp.join(args.work_dir, task))
            print(
                f'== train_smoke: {task} ok in '
                f'{time.perf_counter() - start:.0f} s',
                flush=True)
        except Exception as err:  # report it, go on with the other tasks
            print(f'== train_smoke: {task} FAILED: {err}', flush=True)
            failed.append(task)
    sys.exit(len(failed))


if __name__ == '__main__':
    main()
