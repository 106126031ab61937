"""Whether mmcv's compiled ops run on a device, said in plain words.

An mmcv built without CUDA kernels imports fine and fails only when a
detector first calls RoIAlign or NMS on the GPU, with mmcv's low-level
``nms_impl: implementation for device cuda:0 not found``. The Distiller
checks once per device, at its first forward there, and
``tools/check_env.py`` runs the same probes for every device it sees.

Only torch is imported at module level (mmcv lazily): check_env.py loads
this file even where the rest of the stack does not import.
"""
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

# mmcv's own build switches; pip builds from source (--no-binary) against
# the installed torch (--no-build-isolation).
PIP_BUILD = ('MMCV_WITH_OPS=1 {cuda}pip install --no-build-isolation '
             '--no-binary mmcv --no-deps --force-reinstall mmcv=={version}')
# Library packages whose models call mmcv's compiled ops (mmdet's heads
# call nms / RoIAlign as functions, so no mmcv.ops module shows them).
_OPS_USERS = ('mmcv.ops', 'mmdet.')


def rebuild_fix(cuda: bool = True) -> str:
    """The command that rebuilds the installed mmcv with compiled ops (with
    CUDA kernels when ``cuda``), for a pip-installed user and a checkout."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        mmcv_version = version('mmcv')
    except PackageNotFoundError:  # named in the message as is
        mmcv_version = '<the version you need>'
    command = PIP_BUILD.format(
        cuda='FORCE_CUDA=1 ' if cuda else '', version=mmcv_version)
    if not cuda:
        return f'rebuild mmcv: `{command}` (from a checkout: `make env`)'
    return (f'rebuild mmcv with CUDA ops on a GPU node: `{command}` '
            '(nvcc from CUDA_HOME; TORCH_CUDA_ARCH_LIST picks the GPU archs; '
            'from a checkout: `MMCV_CUDA=1 make env`), then '
            '`python tools/check_env.py`')


def _nms(device: torch.device) -> str:
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]],
                         device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    # The second box overlaps the first by 81 %: suppressed.
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f'kept boxes {keep.tolist()}, expected [0, 2]')
    return 'kept boxes [0, 2] of 3'


def _roi_align(device: torch.device) -> str:
    from mmcv.ops import roi_align
    feats = torch.arange(16., device=device).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device=device)
    out = roi_align(feats, rois, (2, 2), 1.0, 2, 'avg', True)
    # The average of each 2x2 quadrant of 0..15: 2.5, 4.5, 10.5, 12.5.
    expected = torch.tensor([2.5, 4.5, 10.5, 12.5], device=device)
    if not torch.allclose(out.flatten(), expected):
        raise RuntimeError(f'got {out.flatten().tolist()}, expected '
                           f'{expected.tolist()}')
    return 'pooled a 4x4 map to 2x2 correctly'


OP_PROBES: Dict[str, Callable[[torch.device], str]] = {
    'nms': _nms,
    'roi_align': _roi_align
}


def probe_ops(device: Union[str, torch.device]) -> List[Tuple[str, bool, str]]:
    """Run a tiny ``nms`` and ``roi_align`` on ``device``.

    Returns:
        ``(op, ok, detail)`` per op: what it computed, or the error.
    """
    device = torch.device(device)
    results = []
    for name, probe in OP_PROBES.items():
        try:
            results.append((name, True, probe(device)))
        except Exception as err:  # any failure is the answer here
            first = str(err).strip().splitlines()[0] if str(err) else ''
            results.append((name, False, f'{type(err).__name__}: {first}'))
    return results


def cuda_ops_problem(device: Union[str, torch.device]) -> Optional[str]:
    """Why mmcv's ops cannot run on the CUDA ``device``; None when they do.

    A build without CUDA kernels is read from mmcv itself (no GPU needed);
    one with kernels is run once (an arch it was not built for fails).
    """
    try:
        import mmcv
        from mmcv.ops import get_compiling_cuda_version
    except ImportError as err:
        return f'mmcv.ops does not import ({err})'
    if get_compiling_cuda_version() == 'not available':
        return f'mmcv {mmcv.__version__} was built with CPU ops only'
    failed = [(op, detail) for op, ok, detail in probe_ops(device) if not ok]
    if failed:
        return (f'mmcv {mmcv.__version__}\'s CUDA ops fail on {device}: ' +
                '; '.join(f'{op}: {detail}' for op, detail in failed))
    return None


def uses_mmcv_ops(model: nn.Module) -> bool:
    """Whether ``model`` (or a submodule) comes from a library that calls
    mmcv's compiled ops."""
    modules = list(model.modules())
    # The Distiller keeps its teacher outside the module tree.
    teacher = getattr(model, 'teacher', None)
    if isinstance(teacher, nn.Module):
        modules += list(teacher.modules())
    return any(type(m).__module__.startswith(_OPS_USERS) for m in modules)


def check_mmcv_ops(model: nn.Module, device: Union[str, torch.device]) -> None:
    """Fail with the fix when ``model`` needs mmcv ops that ``device``
    lacks; does nothing off CUDA or for models that need none."""
    device = torch.device(device)
    if device.type != 'cuda' or not uses_mmcv_ops(model):
        return
    problem = cuda_ops_problem(device)
    if problem:
        raise RuntimeError(
            f'`mmcv` should have CUDA ops to run {type(model).__name__} on '
            f'{device}, but {problem}; {rebuild_fix()}.')


def _first_tensor(args: tuple, kwargs: dict) -> Optional[torch.Tensor]:
    inputs = kwargs.get('inputs', args[0] if args else None)
    if isinstance(inputs, (list, tuple)) and inputs:
        inputs = inputs[0]
    return inputs if isinstance(inputs, torch.Tensor) else None


def _check_first_forward(module: nn.Module, args: tuple, kwargs: dict) -> None:
    inputs = _first_tensor(args, kwargs)
    if inputs is not None and inputs.device not in module._mmcv_ops_checked:
        check_mmcv_ops(module, inputs.device)
        module._mmcv_ops_checked.add(inputs.device)


def watch_mmcv_ops(model: nn.Module) -> None:
    """Run :func:`check_mmcv_ops` at ``model``'s first forward on each
    device (training, validation and the teacher's gate all go through
    ``forward``), so a missing kernel fails with its fix before mmcv's
    low-level error. A module-level hook: the model stays picklable."""
    model._mmcv_ops_checked = set()  # the devices checked so far
    model.register_forward_pre_hook(_check_first_forward, with_kwargs=True)
