"""The model wrapper that trains a student with a frozen teacher beside it."""
import copy
import logging
from contextlib import contextmanager, nullcontext
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Union)

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import nn
from torch.nn import functional as F

from ..utils.mmcv_ops import watch_mmcv_ops
from .fast_teacher import FastTeacher
from .nonfinite import (nonfinite, scaler_in_charge, teacher_error, tensors_of,
                        term_error, warn_once)
from .recorder import Recorder
from .teacher import TeacherCfg, build_teacher

_AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
_ENTRY_KEYS = {'student', 'teacher', 'loss', 'connector', 'resize_teacher'}


@MODELS.register_module()
class Distiller(BaseModel):
    """Add distillation terms to any OpenMMLab model's own losses.

    The student keeps its data preprocessor, losses and log keys, so curves
    compare with its baseline; each entry of ``distill_losses`` adds one loss
    key. One exception: a student key named exactly ``loss`` (mmpretrain's
    heads) becomes ``loss_student``, so the logged ``loss`` is always the
    optimised total. The teacher is frozen and no submodule: optimizers,
    DDP and checkpoints see the student and connectors only.

    Taps are forward hooks on named submodules of either model; a tap called
    several times in a step (a head shared by FPN levels) pairs its calls in
    order and sums the terms. The student runs first, then the
    teacher in ``tensor`` mode under ``no_grad``: no targets, no losses.

    Args:
        student: The library's model config (``ImageClassifier``, ...).
        teacher: A model config, a config file, or ``'pkg::path.py'``.
        distill_losses: ``{name: dict(student=path, teacher=path, loss=cfg)}``;
            names must contain ``'loss'`` so MMEngine adds them up. An entry
            may add ``connector=cfg``, a trainable module applied to the
            student's output first (saved and trained with the student), and
            ``resize_teacher=True`` to resize dense teacher maps bilinearly to
            the student's spatial size instead of failing.
        teacher_ckpt: The teacher's weights: a local path, an http(s) URL,
            ``torchvision://name`` or ``open-mmlab://name``.
        teacher_pretrained: Take ``teacher_ckpt`` from the metafile of the
            ``'pkg::path'`` teacher config (its model-zoo weights).
        teacher_ckpt_converter: Maps the keys of ``teacher_ckpt`` to the
            teacher's layout before loading: a callable on the state dict or
            a name registered in MMEngine's ``FUNCTIONS``, e.g.
            ``'torchvision_resnet'`` (torchvision ResNet weights into an
            mmpretrain ResNet) or ``'cifar_backbone'`` (the seed's CIFAR
            checkpoints). None (default) loads the keys as they are.
        teacher_strict: Refuse a teacher checkpoint whose keys do not match.
        teacher_autocast: ``'bf16'`` or ``'fp16'`` to run the teacher alone
            under autocast, whatever the student's precision; None for fp32.
            ``'auto'`` (default) picks bf16 on GPUs that support it, else
            fp16, and fp32 on the CPU (where half-precision convolutions are
            slower). DIST itself is computed in fp32 either way.
        teacher_channels_last: Keep a convolutional teacher's weights and
            inputs in channels-last layout (faster convolutions on recent
            GPUs). ``'auto'`` (default) does it on CUDA only.
        teacher_forward: How to run the teacher when ``tensor`` mode does
            more or other than the taps need (two-stage detectors): a config
            of a callable ``fn(teacher, inputs, data_samples)``, whose
            optional ``attach(student, teacher)`` is called once here.
        teacher_fuse: Fold the teacher's BatchNorms into the convolutions
            they follow, at its first forward (checked there against the
            unfolded teacher; exact up to rounding). Off by default.
        teacher_compile: ``torch.compile`` the teacher's backbone (True, or
            a dict of ``torch.compile`` options); falls back to eager with
            one log line when compilation fails. Off by default.
        nonfinite_guard: Check the teacher's tap outputs and every
            distillation term for NaN/Inf each step (an fp16 teacher
            overflow is recomputed in fp32; anything else stops the run
            before the step, see :mod:`.nonfinite`). Keep it on; False only
            measures its cost (tools/benchmark.py).
        data_preprocessor: Given to the student when its config has none (the
            Runner passes a config's top-level ``data_preprocessor`` here).
    """

    def __init__(self,
                 student: dict,
                 teacher: TeacherCfg,
                 distill_losses: Dict[str, dict],
                 teacher_ckpt: Optional[str] = None,
                 teacher_ckpt_converter: Optional[Union[str, Callable]] = None,
                 teacher_strict: bool = True,
                 teacher_pretrained: bool = False,
                 teacher_autocast: Optional[str] = 'auto',
                 teacher_channels_last: Union[bool, str] = 'auto',
                 teacher_forward: Optional[dict] = None,
                 teacher_fuse: bool = False,
                 teacher_compile: Union[bool, dict] = False,
                 nonfinite_guard: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **unknown: Any) -> None:
        _reject_unknown_args(unknown)
        taps = _check_distill_losses(distill_losses)
        if teacher_autocast not in (None, 'auto', *_AUTOCAST_DTYPES):
            raise ValueError(
                '`teacher_autocast` should be None, "auto", '
                f'"bf16" or "fp16", but got {teacher_autocast!r}.')
        if teacher_channels_last not in (True, False, 'auto'):
            raise ValueError('`teacher_channels_last` should be True, False '
                             f'or "auto", but got {teacher_channels_last!r}.')
        student = copy.deepcopy(student)
        if data_preprocessor is not None:
            student.setdefault('data_preprocessor', data_preprocessor)
        student_model = MODELS.build(student)
        super().__init__(
            data_preprocessor=student_model.data_preprocessor,
            init_cfg=init_cfg)
        self.student = student_model
        self.teacher = build_teacher(teacher, teacher_ckpt, teacher_strict,
                                     teacher_pretrained,
                                     teacher_ckpt_converter)
        self.teacher_autocast = teacher_autocast
        self.teacher_channels_last = teacher_channels_last
        self._teacher_is_channels_last = False
        self.distill_losses = nn.ModuleDict({
            name: MODELS.build(cfg['loss'])
            for name, cfg in distill_losses.items()
        })
        self.connectors = nn.ModuleDict({
            name: MODELS.build(cfg['connector'])
            for name, cfg in distill_losses.items() if cfg.get('connector')
        })
        self.resize_teacher = {
            name
            for name, cfg in distill_losses.items()
            if cfg.get('resize_teacher', False)
        }
        self.taps = taps
        self.student_taps = Recorder(self.student,
                                     [s for s, _ in taps.values()], 'student')
        self.teacher_taps = Recorder(self.teacher,
                                     [t for _, t in taps.values()], 'teacher')
        # Set by DistillHook's warm-up / stop schedule; 0 skips the teacher.
        self.distill_scale = 1.0
        self._teacher_predicts = False
        self.teacher_forward = None
        if teacher_forward is not None:
            self.teacher_forward = MODELS.build(teacher_forward)
            if hasattr(self.teacher_forward, 'attach'):
                self.teacher_forward.attach(self.student, self.teacher)
        self.fast_teacher = FastTeacher(self.teacher, teacher_fuse,
                                        teacher_compile,
                                        [t for _, t in taps.values()])
        self._exclude_teacher_from_checkpoints_and_ddp()
        watch_mmcv_ops(self)  # a clear error when mmcv lacks CUDA kernels
        # Recorded in checkpoints; a resume with another teacher warns.
        self.teacher_source = _teacher_source(teacher, teacher_ckpt,
                                              teacher_pretrained)
        self._warned: set = set()  # non-finite warnings already logged
        self.nonfinite_guard = bool(nonfinite_guard)

    def _exclude_teacher_from_checkpoints_and_ddp(self) -> None:
        # The teacher is rebuilt from `teacher_ckpt`; saving it would add its
        # full size to every checkpoint. (It is no submodule, see
        # `__setattr__`; these hooks also cover a subclass registering one.)
        self._register_state_dict_hook(_drop_teacher_keys)
        self.register_load_state_dict_post_hook(_forgive_teacher_keys)

    def __setattr__(self, name: str, value: Any) -> None:
        # The teacher is kept out of the module tree: whatever walks
        # `parameters()`/`named_children()` (optimizer constructors and their
        # `paramwise_cfg`, DDP, SyncBN conversion, parameter counts) sees the
        # student and connectors only, exactly the trainable model.
        if name == 'teacher' and isinstance(value, nn.Module):
            self._modules.pop('teacher', None)
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _apply(self, fn: Callable, recurse: bool = True) -> 'Distiller':
        # `.to(device)`, `.cuda()`, `.half()` still reach the hidden teacher.
        super()._apply(fn, recurse)
        teacher = self.__dict__.get('teacher')
        if recurse and teacher is not None:
            teacher._apply(fn)
        return self

    def extra_repr(self) -> str:
        return f'teacher={type(self.teacher).__name__} (frozen, no submodule)'

    def _set_device(self, device: torch.device) -> None:
        # MMEngine's `to()` tells data preprocessors their device this way.
        super()._set_device(device)
        teacher = self.__dict__.get('teacher')
        if isinstance(teacher, BaseModel):
            teacher._set_device(device)

    def init_weights(self) -> None:
        """Initialise the student and connectors; the teacher keeps the
        weights loaded from its checkpoint."""
        for module in (self.student, *self.connectors.values()):
            if hasattr(module, 'init_weights'):
                module.init_weights()

    def train(self, mode: bool = True) -> 'Distiller':
        """Set the student's mode; the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List] = None,
                mode: str = 'tensor') -> Union[Dict[str, torch.Tensor], Any]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        # predict / tensor: the student alone, so the library's loops and
        # metrics work unchanged (DistillHook swaps in the teacher once).
        model = self.teacher if self._teacher_predicts else self.student
        try:
            return model(inputs, data_samples, mode=mode)
        finally:
            # The taps record these calls too; drop them, or a validation
            # epoch keeps every tapped feature map (an FPN) alive.
            self.student_taps.clear()
            self.teacher_taps.clear()

    @contextmanager
    def teacher_predicts(self) -> Iterator[None]:
        """Within this context, ``predict``/``tensor`` run the teacher."""
        self._teacher_predicts = True
        try:
            yield
        finally:
            self._teacher_predicts = False

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List]) -> Dict[str, torch.Tensor]:
        """The student's own losses plus one key per distillation term."""
        self.student_taps.clear()
        self.teacher_taps.clear()
        try:
            losses = _rename_bare_loss(
                self.student(inputs, data_samples, mode='loss'))
            clash = set(self.taps) & set(losses)
            if clash:
                raise ValueError(f'`distill_losses` keys {sorted(clash)} are '
                                 'already losses of the student; rename them.')
            if self.distill_scale == 0:
                # Distillation switched off: save the teacher's forward, keep
                # the keys so logs stay aligned. Connectors still join the
                # graph (times 0), or DDP would stop on unused parameters.
                zero = sum((p.sum() * 0 for p in self.connectors.parameters()),
                           next(self.student.parameters()).new_zeros(()))
                losses.update({name: zero for name in self.taps})
                return losses
            self.run_teacher(inputs, data_samples)
            if self.nonfinite_guard:
                self._guard_teacher_taps(inputs, data_samples)
            for name, (s_path, t_path) in self.taps.items():
                losses[name] = self.distill_scale * self._term(
                    name, s_path, t_path)
            if self.nonfinite_guard:
                self._guard_terms(losses, inputs)
        finally:
            # Drop references to activations as soon as the step is done.
            self.student_taps.clear()
            self.teacher_taps.clear()
        return losses

    def run_teacher(self,
                    inputs: torch.Tensor,
                    data_samples: Optional[List],
                    fp32: bool = False) -> None:
        """Run the teacher for its taps only (no targets, no losses);
        ``fp32=True`` without the teacher's autocast."""
        device = inputs.device.type if isinstance(inputs, torch.Tensor) \
            else 'cpu'
        dtype = None if fp32 else _teacher_dtype(self.teacher_autocast, device)
        precision = nullcontext() if dtype is None else torch.autocast(
            device_type=device, dtype=dtype)
        if _use_channels_last(self.teacher_channels_last, inputs):
            if not self._teacher_is_channels_last:
                self.teacher.to(memory_format=torch.channels_last)
                self._teacher_is_channels_last = True
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), precision:
            self.fast_teacher(lambda: self._call_teacher(inputs, data_samples),
                              self.teacher_taps)

    def _call_teacher(self, inputs: torch.Tensor,
                      data_samples: Optional[List]) -> None:
        if self.teacher_forward is None:
            self.teacher(inputs, data_samples, mode='tensor')
        else:
            self.teacher_forward(self.teacher, inputs, data_samples)

    def _term(self, name: str, s_path: str, t_path: str) -> torch.Tensor:
        s_calls = self.student_taps.outputs[s_path]
        t_calls = self.teacher_taps.outputs[t_path]
        if len(s_calls) != len(t_calls) or not s_calls:
            raise RuntimeError(
                f'{name}: student tap {s_path!r} ran {len(s_calls)} time(s) '
                f'but teacher tap {t_path!r} ran {len(t_calls)} time(s) in '
                'this step; choose modules that run equally often.')
        loss_fn = self.distill_losses[name]
        connector = self.connectors[name] if name in self.connectors else None
        total = 0.
        for i, (s_out, t_out) in enumerate(zip(s_calls, t_calls)):
            if connector is not None:
                s_out = connector(s_out)
            for s, t in _pair_tensors(s_out, t_out, name, s_path, t_path):
                if name in self.resize_teacher:
                    t = _resize_like(t, s)
                _check_shapes(s, t, name, s_path, t_path, i)
                total = total + loss_fn(s, t)
        return total

    def _guard_teacher_taps(self, inputs: torch.Tensor,
                            data_samples: Optional[List]) -> None:
        """Teacher taps must be finite; an fp16/bf16 overflow is recomputed
        in fp32 for this step (see :mod:`.nonfinite`)."""
        term_of = {t: name for name, (_, t) in self.taps.items()}
        outputs = self.teacher_taps.outputs
        bad = nonfinite({t: _tensors_of_calls(outputs[t]) for t in term_of})
        if not bad:
            return
        device = inputs.device.type if isinstance(inputs, torch.Tensor) \
            else 'cpu'
        dtype = _teacher_dtype(self.teacher_autocast, device)
        if dtype is None:
            raise teacher_error(term_of[bad[0]], bad[0], recomputed=False)
        for tap in bad:
            warn_once(
                self._warned, f'teacher:{tap}',
                f'{term_of[tap]}: teacher tap {tap!r} gave NaN/Inf under '
                f'{dtype} autocast; recomputing the teacher in fp32 for each '
                'such step (logged once per tap).')
        self.teacher_taps.clear()
        self.run_teacher(inputs, data_samples, fp32=True)
        bad = nonfinite({t: _tensors_of_calls(outputs[t]) for t in term_of})
        if bad:
            raise teacher_error(term_of[bad[0]], bad[0], recomputed=True)

    def _guard_terms(self, losses: Dict[str, Any],
                     inputs: torch.Tensor) -> None:
        """A non-finite distillation term stops the run before the step,
        unless an AMP loss scaler skips the step (see :mod:`.nonfinite`)."""
        bad = nonfinite({
            name: [losses[name]]
            for name in self.taps if isinstance(losses[name], torch.Tensor)
        })
        if not bad:
            return
        device = inputs.device.type if isinstance(inputs, torch.Tensor) \
            else 'cpu'
        if scaler_in_charge(device):
            warn_once(
                self._warned, 'amp', f'{bad[0]} is non-finite under AMP: '
                "the loss scaler skips this step's optimizer update and "
                'lowers its scale (logged once).')
            return
        raise term_error(bad[0], losses[bad[0]], self.taps[bad[0]][0])

    def get_extra_state(self) -> torch.Tensor:
        """Saved in every checkpoint: which teacher the run distilled.

        As a uint8 tensor of the UTF-8 name, so that every state-dict value
        stays a tensor for the code that iterates over them.
        """
        name = (self.teacher_source or '').encode()
        return torch.tensor(list(name), dtype=torch.uint8)

    def set_extra_state(self, state: Any) -> None:
        """Warn loudly when a checkpoint was made with another teacher."""
        recorded = bytes(state.tolist()).decode() if isinstance(
            state, torch.Tensor) else None
        if (recorded or None) != self.teacher_source:
            print_log(
                f'!!! TEACHER MISMATCH: this checkpoint was trained with '
                f'the teacher {recorded!r}, but this run uses '
                f'{self.teacher_source!r}. A resumed run goes on with the '
                'new teacher; if that is not intended, stop it and set '
                '`model.teacher_ckpt` to the recorded one.',
                logger='current',
                level=logging.WARNING)


def _reject_unknown_args(unknown: Dict[str, Any]) -> None:
    # Options written for the student (`--cfg-options model.backbone...` on
    # a Distiller config) land here; say where they belong.
    if unknown:
        name = sorted(unknown)[0]
        raise ValueError(
            f'`Distiller` got unknown arguments {sorted(unknown)}: `model` '
            'is a Distiller here, so options for the student go under '
            f'`model.student`, e.g. `--cfg-options model.student.{name}=...`'
            ' (and for the teacher under `model.teacher`).')


def _rename_bare_loss(losses: Dict[str, Any]) -> Dict[str, Any]:
    """Rename a student's key named exactly ``loss`` to ``loss_student``.

    MMEngine logs the optimised total as ``loss``; a student key of that
    very name (mmpretrain's heads return one) would overwrite the total in
    the log. Renamed, it still counts (its name contains ``loss``).
    """
    if 'loss' not in losses:
        return losses
    if 'loss_student' in losses:
        raise ValueError('The student returns both `loss` and '
                         '`loss_student`; rename one of them.')
    return {
        ('loss_student' if k == 'loss' else k): v
        for k, v in losses.items()
    }


def _teacher_source(teacher: Any, ckpt: Optional[str],
                    pretrained: bool) -> Optional[str]:
    if ckpt is not None:
        return str(ckpt)
    return f'{teacher} (pretrained)' if pretrained else None


def _tensors_of_calls(calls: List[Any]) -> List[torch.Tensor]:
    return [t for call in calls for t in tensors_of(call)]


def _teacher_dtype(choice: Optional[str],
                   device: str) -> Optional[torch.dtype]:
    if choice != 'auto':
        return None if choice is None else _AUTOCAST_DTYPES[choice]
    if device != 'cuda':
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _use_channels_last(choice: Union[bool, str], inputs: Any) -> bool:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        return False
    return inputs.is_cuda if choice == 'auto' else bool(choice)


def _check_distill_losses(distill_losses: Dict[str, dict]) -> Dict:
    if not isinstance(distill_losses, dict) or not distill_losses:
        raise ValueError('`distill_losses` should be a non-empty dict of '
                         'name -> dict(student=..., teacher=..., loss=...), '
                         f'but got {distill_losses!r}.')
    taps = {}
    for name, cfg in distill_losses.items():
        if 'loss' not in name:
            raise ValueError(
                f'`distill_losses` names should contain "loss" (MMEngine '
                f'only sums such keys), but got {name!r}; try '
                f'"loss_{name}".')
        missing = {'student', 'teacher', 'loss'} - set(cfg)
        if missing:
            raise ValueError(f'`distill_losses.{name}` should have keys '
                             f'student, teacher and loss, but lacks '
                             f'{sorted(missing)}.')
        unknown = set(cfg) - _ENTRY_KEYS
        if unknown:
            raise ValueError(f'`distill_losses.{name}` should only have keys '
                             f'{sorted(_ENTRY_KEYS)}, but got unknown '
                             f'{sorted(unknown)}; check the spelling.')
        taps[name] = (cfg['student'], cfg['teacher'])
    return taps


def _pair_tensors(s_out: Any, t_out: Any, name: str, s_path: str,
                  t_path: str) -> Sequence:
    """Pair outputs; modules returning tuples (an FPN) pair element-wise."""
    if isinstance(s_out, torch.Tensor) and isinstance(t_out, torch.Tensor):
        return [(s_out, t_out)]
    if (isinstance(s_out, (tuple, list)) and isinstance(t_out, (tuple, list))
            and len(s_out) == len(t_out)):
        return list(zip(s_out, t_out))
    raise RuntimeError(
        f'{name}: student tap {s_path!r} returned {_describe(s_out)} but '
        f'teacher tap {t_path!r} returned {_describe(t_out)}; tap modules '
        'whose outputs correspond.')


def _resize_like(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize a dense teacher map to the student's size.

    The teacher is resized (not the student) so the loss keeps the student's
    resolution and its gradient needs no interpolation.
    """
    if t.dim() < 3 or t.shape[2:] == s.shape[2:]:
        return t
    return F.interpolate(
        t, size=s.shape[2:], mode='bilinear', align_corners=False)


def _check_shapes(s: torch.Tensor, t: torch.Tensor, name: str, s_path: str,
                  t_path: str, call: int) -> None:
    if s.shape != t.shape:
        raise RuntimeError(
            f'{name}: student tap {s_path!r} output of shape '
            f'{tuple(s.shape)} does not match teacher tap {t_path!r} '
            f'output of shape {tuple(t.shape)} (call {call}). ' +
            (f'Only the spatial sizes differ: set `resize_teacher=True` in '
             f'`distill_losses.{name}` to resize the teacher map to the '
             "student's size." if _only_spatial_differs(s, t) else
             'Tap modules whose outputs line up, e.g. heads with the '
             'same classes.'))


def _only_spatial_differs(s: torch.Tensor, t: torch.Tensor) -> bool:
    return s.dim() == t.dim() > 2 and s.shape[:2] == t.shape[:2]


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f'a tensor of shape {tuple(out.shape)}'
    if isinstance(out, (tuple, list)):
        return f'a {type(out).__name__} of {len(out)}'
    return type(out).__name__


def _drop_teacher_keys(module: nn.Module, state_dict: dict, prefix: str,
                       local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]


def _forgive_teacher_keys(module: nn.Module, incompatible_keys) -> None:
    missing = incompatible_keys.missing_keys
    # `_extra_state`: checkpoints written before the teacher was recorded.
    missing[:] = [
        k for k in missing
        if not k.startswith('teacher.') and k != '_extra_state'
    ]
