"""What the benchmark runs: the tasks, their cases and the teacher modes."""
import os.path as osp
from typing import List, NamedTuple, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CASES = ('student', 'distill', 'teacher', 'teacher_loss')
# Distiller options of each --teacher-modes entry.
TEACHER_MODES = {
    'eager': {},
    'fused': dict(teacher_fuse=True),
    'compiled': dict(teacher_compile=True),
    'fused+compiled': dict(teacher_fuse=True, teacher_compile=True),
    # The non-finite guard switched off: its cost is eager's b minus this b.
    'unguarded': dict(nonfinite_guard=False),
}


class Task(NamedTuple):
    config: str
    size: Tuple[int, int]  # (height, width) of the real input
    batch: int  # real batch per GPU
    kind: str  # 'cls', 'det' or 'seg'


TASKS = {
    'cls':
    Task('configs/mmpretrain/dist_r34-mmpretrain_r18_8xb32-100e_in1k.py',
         (224, 224), 256, 'cls'),
    'retinanet':
    Task('configs/mmdet/dist_retinanet-x101_retinanet-r50_8xb2-2x_coco.py',
         (800, 1216), 2, 'det'),
    'faster-rcnn':
    Task(
        'configs/mmdet/'
        'dist_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py',
        (800, 1216), 2, 'det'),
    'seg':
    Task(
        'configs/mmseg/'
        'dist_deeplabv3-r101_deeplabv3-r18_4xb2-80k_cityscapes-512x1024.py',
        (512, 1024), 2, 'seg'),
    'seg-psp':
    Task(
        'configs/mmseg/'
        'dist_deeplabv3-r101_pspnet-r18_4xb2-80k_cityscapes-512x1024.py',
        (512, 1024), 2, 'seg'),
}


def scaled_size(size: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """Multiply each side by ``scale``; round to a multiple of 32 (>= 32),
    so detectors and segmentors need no padding."""
    return tuple(max(32, 32 * int(side * scale / 32 + 0.5)) for side in size)


def run_names(tasks: List[str], modes: List[str]) -> List[str]:
    """One run per teacher mode and task, in that order: ``'cls'`` for the
    eager teacher, ``'cls@fused'`` for a fused one."""
    return [
        task if mode == 'eager' else f'{task}@{mode}' for mode in modes
        for task in tasks
    ]


def split_name(name: str) -> Tuple[str, str]:
    """``'cls@fused'`` -> ``('cls', 'fused')``; no ``@`` is eager."""
    task, _, mode = name.partition('@')
    return task, mode or 'eager'


def task_cases(name: str) -> List[str]:
    """The cases of a task, in the order they run: loss mode first, while
    the teacher still has its default (not channels-last) layout; loss mode
    is the eager teacher's only."""
    task, mode = split_name(name)
    cases = ['student', 'teacher', 'distill']
    if TASKS[task].kind == 'det' and mode == 'eager':
        return ['teacher_loss', *cases]
    return cases
