"""Make a frozen teacher cheaper: fold its BatchNorms, compile its backbone.

The teacher is frozen and in eval mode for the whole run, so each of its
BatchNorms is a fixed per-channel affine map. One that directly follows a
convolution can be merged into that convolution's weight and bias, which
saves a full read and write of every feature map it touched. A compiled
backbone (``torch.compile``, with inductor's freezing: the frozen weights
become constants of the graph) fuses the remaining element-wise work; it
is kept only where it measured faster than eager on the run's own first
steps, since on some CPUs it is not.
"""
import copy
import statistics
import time
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from torch import nn

from .nonfinite import tensors_of

# Tap path -> what the tap returned, one entry per call (see Recorder).
Taps = Dict[str, List[Any]]
# The public BatchNorm classes (SyncBatchNorm is one in eval mode).
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
                nn.SyncBatchNorm)
# Folding changes only rounding; anything larger means a fold was wrong.
_FOLD_RTOL = 1e-3
_FOLD_ATOL = 1e-4
# Teacher forwards timed each way (compiled, eager, alternating) after the
# compiling one, before the faster is kept for the run.
TRIAL_CALLS = 2


def _log(message: str, level: str = 'info') -> None:
    getattr(MMLogger.get_current_instance(), level)(message)


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.Module) -> None:
    """Merge an eval-mode BatchNorm into the convolution before it (in
    place): ``bn(conv(x)) == conv'(x)`` up to rounding."""
    with torch.no_grad():
        scale = bn.running_var.add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        shape = (-1, ) + (1, ) * (conv.weight.dim() - 1)
        weight = conv.weight * scale.reshape(shape).to(conv.weight.dtype)
        conv.weight.copy_(weight)
        bias = shift.to(conv.weight.dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(bias, requires_grad=False)
    else:
        with torch.no_grad():
            conv.bias.copy_(bias)


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _foldable(module: nn.Module) -> bool:
    return isinstance(module, _BATCH_NORMS) and module.track_running_stats \
        and module.running_mean is not None and not module.training


def find_conv_bn_pairs(model: nn.Module,
                       forward: Callable[[], Any]) -> Tuple[List, Any]:
    """Run ``forward`` once; return ``(conv, bn)`` module paths where
    every call of the BatchNorm took exactly the tensor that the
    convolution had just returned, and what ``forward`` returned.

    Tensor identity is what a static walk of the modules cannot see: the
    order of ``named_modules`` says nothing about the data flow (mmcv's
    ``ConvModule`` may put the norm first; a block may add a residual in
    between).
    """
    convs = {
        path: m
        for path, m in model.named_modules() if isinstance(m, nn.Conv2d)
    }
    bns = {path: m for path, m in model.named_modules() if _foldable(m)}
    produced: Dict[int, str] = {}
    consumed: Dict[str, List[Optional[str]]] = {path: [] for path in bns}
    keep: List[torch.Tensor] = []  # ids stay unique while we hold them

    def conv_hook(path: str):

        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            keep.append(output)
            produced[id(output)] = path

        return hook

    def bn_hook(path: str):

        def hook(module: nn.Module, args: tuple) -> None:
            consumed[path].append(produced.get(id(args[0])))

        return hook

    handles = [
        m.register_forward_hook(conv_hook(p)) for p, m in convs.items()
    ] + [m.register_forward_pre_hook(bn_hook(p)) for p, m in bns.items()]
    try:
        result = forward()
    finally:
        for handle in handles:
            handle.remove()
        keep.clear()
    pairs = []
    for bn_path, sources in consumed.items():
        if sources and len(set(sources)) == 1 and sources[0] is not None:
            pairs.append((sources[0], bn_path))
    # A convolution feeding two BatchNorms cannot absorb both.
    convs_used = [conv for conv, _ in pairs]
    return [(c, b) for c, b in pairs if convs_used.count(c) == 1], result


def _tap_tensors(outputs: Dict[str, List[Any]]) -> List[torch.Tensor]:
    """fp32 copies of every tensor the taps recorded, in order."""
    return [
        t.detach().float().clone() for calls in outputs.values()
        for t in tensors_of(calls)
    ]


def _same(ref: Sequence[torch.Tensor], new: Sequence[torch.Tensor]) -> bool:
    if len(ref) != len(new):
        return False
    return all(a.shape == b.shape and torch.allclose(
        a,
        b,
        rtol=_FOLD_RTOL,
        atol=_FOLD_ATOL * max(1.0,
                              a.abs().max().item() if a.numel() else 1.0))
               for a, b in zip(ref, new))


def compile_options(options: Any) -> dict:
    """``torch.compile`` keyword arguments for a frozen teacher: inductor
    with freezing (weights folded into the graph as constants; the teacher
    runs under ``no_grad``), unless ``options`` chose a backend, a mode or
    inductor options itself."""
    options = dict(options) if isinstance(options, dict) else {}
    chosen = {'mode', 'options'} & set(options)
    if options.get('backend', 'inductor') == 'inductor' and not chosen:
        options['options'] = {'freezing': True}
    return options


def keep_compiled(eager_ms: Sequence[float],
                  compiled_ms: Sequence[float]) -> bool:
    """Whether the compiled teacher measured faster than the eager one
    (medians of the trial's calls): ``teacher_compile`` never slows a
    run down by more than its trial."""
    return statistics.median(compiled_ms) < statistics.median(eager_ms)


class FastTeacher:
    """Opt-in speed-ups of a frozen, eval-mode teacher, applied at its
    first forward (the data flow is read off a real batch).

    Args:
        teacher: The frozen teacher.
        fuse: Fold BatchNorms into the convolutions they follow. The folded
            teacher is checked once against the unfolded one on the first
            batch, in fp32; a mismatch restores the original weights.
        compile: Compile the teacher's backbone with ``torch.compile``
            (a dict is passed to it as keyword arguments; see
            :func:`compile_options`). Falls back to eager, with one log
            line, when compilation fails, or when the compiled teacher was
            not faster over the :data:`TRIAL_CALLS` timed forwards each way
            that follow the compiling one. Skipped when a tap lies inside
            the backbone.
        taps: The teacher's tap paths.
    """

    # The trial's clock (ms from seconds); the tests give it their numbers.
    clock: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, teacher: nn.Module, fuse: bool, compile: Any,
                 taps: Sequence[str]) -> None:
        if not isinstance(fuse, bool):
            raise TypeError(f'`teacher_fuse` should be a bool, but got '
                            f'{fuse!r}.')
        if not isinstance(compile, (bool, dict)):
            raise TypeError('`teacher_compile` should be a bool or a dict of '
                            f'torch.compile options, but got {compile!r}.')
        self.teacher = teacher
        self.fuse = fuse
        self.compile_options = compile
        self.taps = list(taps)
        self.folded: List[Tuple[str, str]] = []
        self.compiled: Optional[nn.Module] = None
        self._compiled_forward: Optional[Callable] = None
        self._trial: Optional[Dict[str, List[float]]] = None
        self._pending = fuse or bool(compile)

    def __call__(self, forward: Callable[[], Taps]) -> Taps:
        """Run ``forward`` (the teacher, returning its tap outputs),
        preparing the speed-ups the first time."""
        if self._pending:
            self._pending = False
            if self.fuse:
                self._fold(forward)
            if self.compile_options:
                self._compile()
        if self.compiled is None:
            return forward()
        try:
            if self._trial is not None:
                return self._timed(forward)
            return forward()
        except torch.OutOfMemoryError:
            raise
        except Exception as err:  # compilers raise many types
            _log(
                'distkd_mm: compiling the teacher backbone failed '
                f'({_root_cause(err)}); running it eagerly.', 'warning')
            self._use_compiled(False)
            self.compiled = self._trial = None
            return forward()

    def _use_compiled(self, compiled: bool) -> None:
        # An instance attribute shadows the class's forward; deleting it
        # runs the eager forward again.
        if compiled:
            self.compiled.forward = self._compiled_forward
        elif 'forward' in vars(self.compiled):
            del self.compiled.forward

    def _timed(self, forward: Callable[[], Taps]) -> Taps:
        """One forward of the trial: the compiling one untimed, then
        compiled and eager in turn; the faster is kept after the last."""
        trial = self._trial
        if not trial['compiling_done']:
            trial['compiling_done'] = True
            return forward()
        side = 'eager' if len(trial['compiled']) > len(trial['eager']) \
            else 'compiled'
        self._use_compiled(side == 'compiled')
        sync = _synchronize(self.teacher)
        sync()
        start = self.clock()
        taps = forward()
        sync()
        trial[side].append((self.clock() - start) * 1e3)
        if len(trial['eager']) == TRIAL_CALLS:
            self._decide(trial['eager'], trial['compiled'])
        return taps

    def _decide(self, eager_ms: List[float], compiled_ms: List[float]) -> None:
        self._trial = None
        keep = keep_compiled(eager_ms, compiled_ms)
        self._use_compiled(keep)
        timing = (f'{statistics.median(compiled_ms):.1f} ms a teacher '
                  f'forward compiled, {statistics.median(eager_ms):.1f} ms '
                  f'eager (median of {len(eager_ms)} each)')
        if keep:
            _log(f'distkd_mm: `teacher_compile`: {timing}; kept compiled.')
            return
        self.compiled = None
        _log(
            f'distkd_mm: `teacher_compile`: {timing}: not faster here; '
            'running the teacher eagerly.', 'warning')

    def _fold(self, forward: Callable[[], Taps]) -> None:
        with _fp32(self.teacher):
            pairs, outputs = find_conv_bn_pairs(self.teacher, forward)
        reference = _tap_tensors(outputs)
        if not pairs:
            _log('distkd_mm: `teacher_fuse`: no BatchNorm directly follows '
                 'a convolution in the teacher; nothing folded.')
            return
        saved = {
            conv: copy.deepcopy(self.teacher.get_submodule(conv))
            for conv, _ in pairs
        }
        bns = {bn: self.teacher.get_submodule(bn) for _, bn in pairs}
        for conv, bn in pairs:
            fold_bn_into_conv(self.teacher.get_submodule(conv), bns[bn])
            _set_module(self.teacher, bn, nn.Identity())
        with _fp32(self.teacher):
            folded = _tap_tensors(forward())
        if _same(reference, folded):
            self.folded = pairs
            _log(f'distkd_mm: `teacher_fuse` folded {len(pairs)} BatchNorms '
                 'into the teacher\'s convolutions (checked on the first '
                 'batch against the unfolded teacher).')
            return
        for conv, bn in pairs:
            _set_module(self.teacher, conv, saved[conv])
            _set_module(self.teacher, bn, bns[bn])
        _log(
            'distkd_mm: `teacher_fuse`: the folded teacher did not match the '
            'unfolded one on the first batch (a convolution output is used '
            'elsewhere too); kept the unfolded teacher.', 'warning')

    def _compile(self) -> None:
        backbone = getattr(self.teacher, 'backbone', None)
        if not isinstance(backbone, nn.Module):
            _log(
                'distkd_mm: `teacher_compile`: the teacher has no '
                '`backbone`; running it eagerly.', 'warning')
            return
        inside = [t for t in self.taps if t.split('.')[0] in ('', 'backbone')]
        if inside:
            _log(
                f'distkd_mm: `teacher_compile`: teacher taps {inside} lie '
                'in the backbone; running it eagerly.', 'warning')
            return
        # Taps outside the backbone keep their hooks.
        self._compiled_forward = torch.compile(
            backbone.forward, **compile_options(self.compile_options))
        self.compiled = backbone
        self._use_compiled(True)
        self._trial = dict(compiling_done=False, eager=[], compiled=[])
        _log('distkd_mm: `teacher_compile`: the teacher backbone is '
             'compiled at its first forward (the first step takes longer), '
             f'then timed against eager for {TRIAL_CALLS} forwards each.')


def _root_cause(err: BaseException) -> str:
    """The exception a compiler wrapped, in one line."""
    # Dynamo keeps the backend's own error as `inner_exception`.
    while True:
        inner = err.__cause__ or getattr(err, 'inner_exception', None)
        if not isinstance(inner, BaseException):
            break
        err = inner
    first = (str(err).strip().splitlines() or [''])[0]
    return f'{type(err).__name__}: {first}'


def _synchronize(teacher: nn.Module) -> Callable[[], None]:
    """What makes a teacher forward's time real: CUDA runs asynchronously."""
    param = next(teacher.parameters(), None)
    if param is not None and param.device.type == 'cuda':
        return torch.cuda.synchronize
    return lambda: None


def _fp32(teacher: nn.Module):
    """Autocast off: the fold is checked at full precision."""
    param = next(teacher.parameters(), None)
    if param is None:
        return nullcontext()
    return torch.autocast(device_type=param.device.type, enabled=False)
