"""Speed and memory of DIST distillation against its floor.

Builds the real Distillers of our configs with random weights (no
checkpoint, nothing downloaded) and random data of the real input size, and
measures per training step, after warm-up (median of ``--steps``):

- ``student``: the student's own losses, backward and SGD step (a);
- ``distill``: the Distiller's losses (student + teacher + DIST), backward
  and step (b);
- ``teacher``: the teacher alone, as the taps need it (``run_teacher``) (c);
- ``teacher_loss`` (detection only): the teacher in full ``loss`` mode under
  ``no_grad``, as older distillation toolboxes run it (d);

and the ratios b / (a + c) (1.00 is the floor: distillation costs the
student's step plus the teacher's inference) and d / c.

Peak memory is the most a case held above what was held before it started
(the models, the batch): activations, gradients, optimizer state and
temporaries. On CUDA it comes from ``torch.cuda.max_memory_allocated``. On
the CPU it is the growth of the peak RSS (``VmHWM``, restarted at the
case's start through ``/proc/self/clear_refs``; ``ru_maxrss`` elsewhere) of
a fresh process per case, since the allocator keeps freed memory resident;
``--no-memory`` times every case in this process instead and shows n/a.
RSS also counts what glibc keeps for reuse within a case, which overstates
code that frees and reallocates (chunked DIST); ``MALLOC_MMAP_THRESHOLD_=
65536`` in the environment makes it track live tensors, at some cost in
speed.

``--amp`` runs every case under bf16 autocast, as MMEngine's AMP wraps the
whole forward; the teacher has its own ``teacher_autocast`` either way. (On
the CPU, Faster R-CNN fails under it: CPU autocast leaves the RPN's boxes in
bf16 and mmcv's nms takes fp32 only. A failing task is reported, the others
still run.)
``--dist-memory`` adds (or, without ``--tasks``, only runs) plain vs
memory-lean dense DIST, sigmoid, forward + backward on a RetinaNet P3-sized
map. ``--scale`` multiplies every image side (rounded to a multiple of 32,
at least 32) and the sides of that map; ``--batch`` replaces every task's
batch size. On a busy CPU, ``--threads 1`` can be much faster than more.
Examples::

    python tools/benchmark.py --device cuda --amp --dist-memory --json b.json
    python tools/benchmark.py --scale 0.25 --batch 2 --steps 3 --warmup 1
    python tools/benchmark.py --dist-memory --scale 1
"""
import argparse
import gc
import json
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from contextlib import nullcontext
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RESULT_TAG = 'BENCHMARK_RESULT '
CASES = ('student', 'distill', 'teacher', 'teacher_loss')
CASE_TITLES = dict(
    student='(a) student step',
    distill='(b) distillation step',
    teacher='(c) teacher, taps only',
    teacher_loss='(d) teacher, loss mode')
# Distiller options of each --teacher-modes entry.
TEACHER_MODES = {
    'eager': {},
    'fused': dict(teacher_fuse=True),
    'compiled': dict(teacher_compile=True),
    'fused+compiled': dict(teacher_fuse=True, teacher_compile=True),
    # The non-finite guard switched off: its cost is eager's b minus this b.
    'unguarded': dict(nonfinite_guard=False),
}
# A RetinaNet P3 classification map at 800x1216: N x (9 anchors x 80) x H x W.
DIST_MAP = (2, 720, 100, 168)


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


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n', 2)[2])
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=list(TASKS),
        help='tasks to run (default: all, or none with --dist-memory)')
    parser.add_argument(
        '--dist-memory',
        action='store_true',
        help='compare plain and memory-lean DIST on a RetinaNet P3 map')
    parser.add_argument(
        '--scale', type=float, default=1.0, help='image side multiplier')
    parser.add_argument('--batch', type=int, help='images per step')
    parser.add_argument('--steps', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='bf16 autocast, as the student\'s AMP training')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda (default: cuda when available)')
    parser.add_argument(
        '--threads', type=int, help='CPU threads (default: torch\'s own)')
    parser.add_argument(
        '--no-memory',
        action='store_true',
        help='on the CPU, time every case in this process; no memory')
    parser.add_argument(
        '--teacher-modes',
        nargs='+',
        choices=TEACHER_MODES,
        default=['eager'],
        help="the teacher's speed-ups to measure, each a run of every task "
        '(default: eager)')
    parser.add_argument('--json', help='also write the results here')
    # Internal: run one case in this (fresh) process, print its result.
    parser.add_argument('--case', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tasks is None:
        args.tasks = [] if args.dist_memory else list(TASKS)
    if args.scale <= 0 or args.steps < 1 or args.warmup < 0:
        parser.error('--scale should be > 0, --steps >= 1, --warmup >= 0')
    for option in ('batch', 'threads'):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            parser.error(f'--{option} should be >= 1')
    return args


def scaled_size(size: Tuple[int, int], scale: float) -> Tuple[int, int]:
    """Multiply each side by ``scale``; round to a multiple of 32 (>= 32),
    so detectors and segmentors need no padding."""
    return tuple(max(32, 32 * int(side * scale / 32 + 0.5)) for side in size)


# ----------------------------------------------------------------- models
def _strip_pretrained(cfg: object) -> None:
    """Drop every ``pretrained`` URL and ``Pretrained`` init in a config, so
    nothing can download (the benchmark never needs trained weights)."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pretrained'), str):
            cfg['pretrained'] = None
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for value in cfg.values():
            _strip_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _strip_pretrained(value)


def build_distiller(task: Task,
                    size: Tuple[int, int],
                    device: str,
                    mode: str = 'eager') -> torch.nn.Module:
    """The config's Distiller with random weights, on ``device``, its
    teacher run as ``mode`` says (a key of ``TEACHER_MODES``)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(osp.join(REPO, task.config))
    import_modules_from_strings(**cfg.get('custom_imports', {}))
    # Modules the configs name (two-stage teachers, segmentation heads).
    import_modules_from_strings([
        'distkd_mm', 'distkd_mm.distillers.two_stage',
        'distkd_mm.distillers.seg_heads'
    ])
    model_cfg = cfg.model
    model_cfg.teacher_ckpt = None
    model_cfg.teacher_pretrained = False
    model_cfg.update(TEACHER_MODES[mode])
    if 'data_preprocessor' in cfg:  # as the Runner passes it
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    _strip_pretrained(model_cfg.student)
    preprocessor = model_cfg.student.get('data_preprocessor') or {}
    if 'size' in preprocessor:  # mmseg pads to the crop size
        preprocessor['size'] = size
    torch.manual_seed(0)
    scope = cfg.get('default_scope', 'mmengine')
    with warnings.catch_warnings(), \
            DefaultScope.overwrite_default_scope(scope):
        warnings.filterwarnings('ignore', message='.*teacher_ckpt')
        model = MODELS.build(model_cfg)
    return model.to(device).train()


# ------------------------------------------------------------------- data
def make_batch(kind: str, num: int, size: Tuple[int, int]) -> dict:
    """Random uint8 images and the data samples the library's losses read,
    as a dataloader yields them (before the data preprocessor)."""
    g = torch.Generator().manual_seed(0)
    height, width = size
    inputs = [
        torch.randint(0, 256, (3, height, width), generator=g).byte()
        for _ in range(num)
    ]
    make = dict(cls=_cls_sample, det=_det_sample, seg=_seg_sample)[kind]
    samples = [make(g, height, width) for _ in range(num)]
    return dict(inputs=inputs, data_samples=samples)


def _cls_sample(g: torch.Generator, height: int, width: int):
    from mmpretrain.structures import DataSample
    sample = DataSample(
        metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
    return sample.set_gt_label(int(torch.randint(1000, (), generator=g)))


def _det_sample(g: torch.Generator, height: int, width: int, boxes: int = 3):
    """Boxes, labels and box-shaped masks (a Cascade Mask R-CNN teacher in
    loss mode needs masks; the students ignore them)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    side = torch.tensor([width, height])
    corner = torch.rand(boxes, 2, generator=g) * 0.6 * side
    extent = (torch.rand(boxes, 2, generator=g) * 0.3 + 0.1) * side
    bboxes = torch.cat([corner, corner + extent], dim=1)
    masks = np.zeros((boxes, height, width), np.uint8)
    for mask, (x0, y0, x1, y1) in zip(masks, bboxes.int().tolist()):
        mask[y0:y1, x0:x1] = 1
    shape = (height, width)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=shape,
            ori_shape=shape,
            pad_shape=shape,
            scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        bboxes=bboxes,
        labels=torch.randint(80, (boxes, ), generator=g),
        masks=BitmapMasks(masks, height, width))
    return sample


def _seg_sample(g: torch.Generator, height: int, width: int):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    label = torch.randint(19, (1, height, width), generator=g)
    label[:, :height // 8] = 255  # an ignored band, as real masks have
    shape = (height, width)
    sample = SegDataSample(
        metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
    sample.gt_sem_seg = PixelData(data=label)
    return sample


# ------------------------------------------------------------ measurement
def _precision(device: str, amp: bool):
    if not amp:
        return nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def case_fn(model: torch.nn.Module, case: str, inputs: torch.Tensor,
            samples: list, amp: bool) -> Callable[[], None]:
    """One step of ``case``; its set-up (optimizer, RoIs) is done here."""
    device = inputs.device.type
    if case in ('student', 'distill'):
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.SGD(
            params, lr=1e-4, momentum=0.9, weight_decay=1e-4)

        def train_step() -> None:
            with _precision(device, amp):
                if case == 'student':
                    losses = model.student(inputs, samples, mode='loss')
                else:
                    losses = model.loss(inputs, samples)
            loss, _ = model.parse_losses(losses)
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
            model.student_taps.clear()

        return train_step
    rois = _student_rois(model, inputs, samples)

    def teacher_step() -> None:
        if case == 'teacher_loss':
            with torch.no_grad(), _precision(device, amp):
                model.teacher(inputs, samples, mode='loss')
        else:
            if rois is not None:
                model.teacher_forward._rois[:] = rois
            with _precision(device, amp):
                model.run_teacher(inputs, samples)
        model.teacher_taps.clear()

    return teacher_step


def _student_rois(model: torch.nn.Module, inputs: torch.Tensor,
                  samples: list) -> Optional[list]:
    """A two-stage teacher classifies the student's sampled RoIs: capture
    them from one student forward, to run the teacher alone on them."""
    rois = getattr(model.teacher_forward, '_rois', None)
    if rois is None:
        return None
    with torch.no_grad():
        model.student(inputs, samples, mode='loss')
    model.student_taps.clear()
    return list(rois)


def _reset_peak_rss() -> None:
    """Restart the peak RSS from the current RSS (Linux >= 4.0); elsewhere
    the peak of the set-up stays (an underestimate if that was higher)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    """This process's peak RSS: ``VmHWM`` on Linux, else ``ru_maxrss``
    (which a process inherits from its parent across ``exec`` on Linux)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(fn: Callable[[], object], steps: int, warmup: int, device: str,
            memory: bool) -> Dict[str, Optional[float]]:
    """Median ms per call after ``warmup`` calls, and the peak MiB held
    above the state before the first call (None when not measured)."""
    cuda = device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    gc.collect()
    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        base = _peak_rss_bytes()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    peak = None
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    elif memory:
        peak = (_peak_rss_bytes() - base) / 2**20
    return dict(ms=statistics.median(times), peak_mib=peak)


# ------------------------------------------------------------------ tasks
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


def bench_task(name: str, cases: List[str],
               args: argparse.Namespace) -> Dict[str, dict]:
    """Build the task's Distiller once and measure ``cases`` in this
    process."""
    task, mode = split_name(name)
    task = TASKS[task]
    size = scaled_size(task.size, args.scale)
    model = build_distiller(task, size, args.device, mode)
    batch = make_batch(task.kind, args.batch or task.batch, size)
    data = model.data_preprocessor(batch, True)
    results = {}
    for case in cases:
        fn = case_fn(model, case, data['inputs'], data['data_samples'],
                     args.amp)
        results[case] = measure(
            fn, args.steps, args.warmup, args.device, memory=bool(args.case))
        del fn
    del model, data
    gc.collect()
    if args.device.startswith('cuda'):
        torch.cuda.empty_cache()
    return results


def run_task(name: str, args: argparse.Namespace) -> dict:
    """All cases of a task, with the ratios; on the CPU (unless
    ``--no-memory``) each case in a fresh process."""
    cases = task_cases(name)
    if args.device == 'cpu' and not args.no_memory:
        results = {case: run_child(f'{name}:{case}', args) for case in cases}
    else:
        results = bench_task(name, cases, args)
    task = TASKS[split_name(name)[0]]
    size = scaled_size(task.size, args.scale)
    ms = {case: r['ms'] for case, r in results.items()}
    ratios = {
        'b/(a+c)': ms['distill'] / (ms['student'] + ms['teacher']),
        'b/a': ms['distill'] / ms['student']
    }
    if 'teacher_loss' in ms:
        ratios['d/c'] = ms['teacher_loss'] / ms['teacher']
    return dict(
        config=task.config,
        input=[args.batch or task.batch, 3, *size],
        cases={case: results[case]
               for case in CASES if case in results},
        ratios=ratios)


def run_child(spec: str, args: argparse.Namespace) -> dict:
    """Run one case in a fresh Python process; return its result."""
    cmd = [sys.executable, osp.abspath(__file__), '--case', spec]
    for option in ('device', 'scale', 'steps', 'warmup', 'batch', 'threads'):
        value = getattr(args, option)
        if value is not None:
            cmd += [f'--{option}', str(value)]
    if args.amp:
        cmd.append('--amp')
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise RuntimeError(f'benchmark case {spec} failed (exit code '
                       f'{proc.returncode}):\n{proc.stderr[-4000:]}')


# ------------------------------------------------------------ dense DIST
def dist_shape(scale: float) -> Tuple[int, ...]:
    n, c, h, w = DIST_MAP
    return n, c, max(1, round(h * scale)), max(1, round(w * scale))


def dist_fn(variant: str, scale: float,
            device: str) -> Callable[[], Tuple[torch.Tensor, torch.Tensor]]:
    """Forward + backward of plain or memory-lean sigmoid DIST on a dense
    map; returns the value and the student's gradient."""
    from distkd_mm.losses.dist_loss import dist_loss
    from distkd_mm.losses.lean_dist import lean_dist_loss
    loss_fn = dict(plain=dist_loss, lean=lean_dist_loss)[variant]
    g = torch.Generator().manual_seed(0)
    student = torch.randn(dist_shape(scale), generator=g).to(device)
    teacher = torch.randn(dist_shape(scale), generator=g).to(device)

    def run() -> Tuple[torch.Tensor, torch.Tensor]:
        x = student.detach().requires_grad_()
        value = loss_fn(x, teacher, use_sigmoid=True)
        value.backward()
        return value.detach(), x.grad

    return run


def bench_dist(variant: str, args: argparse.Namespace) -> dict:
    fn = dist_fn(variant, args.scale, args.device)
    return measure(fn, args.steps, args.warmup, args.device, bool(args.case))


def run_dist_memory(args: argparse.Namespace) -> dict:
    """Plain vs memory-lean DIST: value and gradient differences, time and
    peak memory of each (each in a fresh process on the CPU)."""
    plain_value, plain_grad = dist_fn('plain', args.scale, args.device)()
    lean_value, lean_grad = dist_fn('lean', args.scale, args.device)()
    result = dict(
        shape=list(dist_shape(args.scale)),
        value=plain_value.item(),
        value_diff=(plain_value - lean_value).abs().item(),
        grad_max_diff=(plain_grad - lean_grad).abs().max().item())
    del plain_grad, lean_grad
    for variant in ('plain', 'lean'):
        if args.device == 'cpu' and not args.no_memory:
            result[variant] = run_child(f'dist:{variant}', args)
        else:
            result[variant] = bench_dist(variant, args)
    peaks = result['plain']['peak_mib'], result['lean']['peak_mib']
    result['peak_ratio'] = peaks[1] / peaks[0] if all(peaks) else None
    return result


# ---------------------------------------------------------------- output
def _mib(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def _last_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return f'{type(err).__name__}: {lines[-1] if lines else ""}'


def print_tasks(tasks: Dict[str, dict]) -> None:
    print(f'{"task":<26} {"input":<15} {"case":<24} {"ms/step":>9} '
          f'{"peak MiB":>9}')
    failed = {name: res for name, res in tasks.items() if 'error' in res}
    tasks = {name: res for name, res in tasks.items() if name not in failed}
    for name, res in failed.items():
        print(f'{name:<26} failed: {res["error"]}')
    for name, res in tasks.items():
        shape = 'x'.join(map(str, res['input']))
        for case, r in res['cases'].items():
            print(f'{name:<26} {shape:<15} {CASE_TITLES[case]:<24} '
                  f'{r["ms"]:>9.1f} {_mib(r["peak_mib"]):>9}')
            name = shape = ''
    print(f'\n{"ratios":<26} {"b/(a+c)":>9} {"b/a":>9} {"d/c":>9}')
    for name, res in tasks.items():
        ratio = res['ratios'].get('d/c')
        print(f'{name:<26} {res["ratios"]["b/(a+c)"]:>9.2f} '
              f'{res["ratios"]["b/a"]:>9.2f} '
              f'{"-" if ratio is None else f"{ratio:.2f}":>9}')


def print_dist(res: dict) -> None:
    shape = 'x'.join(map(str, res['shape']))
    print(f'\ndense DIST (sigmoid) forward + backward on {shape}')
    print(f'{"variant":<12} {"ms":>9} {"peak MiB":>9}')
    for variant in ('plain', 'lean'):
        r = res[variant]
        print(f'{variant:<12} {r["ms"]:>9.1f} {_mib(r["peak_mib"]):>9}')
    ratio = res['peak_ratio']
    print(f'lean / plain peak memory: '
          f'{"n/a" if ratio is None else f"{ratio:.2f}"}; value '
          f'{res["value"]:.6f}, |difference| {res["value_diff"]:.1e}; '
          f'max |gradient difference| {res["grad_max_diff"]:.1e}')


def device_name(device: str) -> str:
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_case(spec: str, args: argparse.Namespace) -> dict:
    """``--case task:case`` or ``dist:variant``, in this process."""
    name, case = spec.split(':')
    if name == 'dist':
        return bench_dist(case, args)
    return bench_task(name, [case], args)[case]


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith('cuda'):
        # Fixed input sizes: let cuDNN pick its fastest kernels.
        torch.backends.cudnn.benchmark = True
    if args.case:
        print(RESULT_TAG + json.dumps(run_case(args.case, args)), flush=True)
        return {}
    results = dict(
        device=args.device,
        device_name=device_name(args.device),
        torch=torch.__version__,
        settings=dict(
            scale=args.scale,
            batch=args.batch,
            steps=args.steps,
            warmup=args.warmup,
            amp=args.amp,
            teacher_modes=args.teacher_modes),
        tasks={})
    names = [
        task if mode == 'eager' else f'{task}@{mode}'
        for mode in args.teacher_modes for task in args.tasks
    ]
    for name in names:
        print(f'running {name} ...', file=sys.stderr, flush=True)
        try:
            results['tasks'][name] = run_task(name, args)
        except Exception as err:  # report it, go on with the other tasks
            traceback.print_exc()
            results['tasks'][name] = dict(error=_last_line(err))
    if args.dist_memory:
        print('running dense DIST ...', file=sys.stderr, flush=True)
        results['dist_memory'] = run_dist_memory(args)
    precision = 'bf16 autocast' if args.amp else 'fp32'
    print(f'{results["device_name"]} ({args.device}), torch '
          f'{torch.__version__}, {torch.get_num_threads()} threads, '
          f'student {precision}, median of {args.steps} steps after '
          f'{args.warmup} warm-up')
    if results['tasks']:
        print_tasks(results['tasks'])
    if args.dist_memory:
        print_dist(results['dist_memory'])
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
