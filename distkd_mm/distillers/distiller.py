"""The model wrapper that trains a student with a frozen teacher beside it."""
import copy
import logging
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import nn

from ..utils.mmcv_ops import watch_mmcv_ops
from ..utils.urls import redact_url
from .fast_teacher import FastTeacher, Taps
from .nonfinite import (nonfinite, scaler_in_charge, teacher_error, tensors_of,
                        term_error, warn_once)
from .recorder import Recorder
from .teacher import TeacherCfg, build_teacher
from .term import build_terms

_AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@MODELS.register_module()
class Distiller(BaseModel):
    """Add distillation terms to any OpenMMLab model's own losses.

    The student keeps its data preprocessor, losses and log keys, so curves
    compare with its baseline; each entry of ``distill_losses`` adds one loss
    key. One exception: a student key named exactly ``loss`` (mmpretrain's
    heads) becomes ``loss_student``, so the logged ``loss`` is always the
    optimised total. The teacher is frozen and no submodule: optimizers,
    DDP and checkpoints see the student and connectors only.

    Each entry is a :class:`~.term.DistillTerm`. Taps record what named
    submodules of either model return, during the training step only; a
    tap called several times in a step (a head shared by FPN levels) pairs
    its calls in order and sums the terms. The student runs first, then the
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
        init_cfg: Initialisation of the student and connectors (e.g.
            ``dict(type='Pretrained', checkpoint=...)`` with ``student.``
            keys), applied by ``init_weights`` before their own ones; the
            teacher is marked initialised and keeps its checkpoint.
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
        self.terms = build_terms(distill_losses)
        teacher_paths = [term.teacher_tap for term in self.terms.values()]
        self.student_taps = Recorder(
            self.student, [term.student_tap for term in self.terms.values()],
            'student')
        self.teacher_taps = Recorder(self.teacher, teacher_paths, 'teacher')
        # Set by DistillHook's warm-up / stop schedule; 0 skips the teacher.
        self.distill_scale = 1.0
        self.teacher_forward = None
        if teacher_forward is not None:
            self.teacher_forward = MODELS.build(teacher_forward)
            if hasattr(self.teacher_forward, 'attach'):
                self.teacher_forward.attach(self.student, self.teacher)
        self.fast_teacher = FastTeacher(self.teacher, teacher_fuse,
                                        teacher_compile, teacher_paths)
        # Checkpoints written before the teacher was recorded lack it.
        self.register_load_state_dict_post_hook(_forgive_extra_state)
        watch_mmcv_ops(self)  # a clear error when mmcv lacks CUDA kernels
        # Recorded in checkpoints; a resume with another teacher warns.
        self.teacher_source = _teacher_source(teacher, teacher_ckpt,
                                              teacher_pretrained)
        self._warned: set = set()  # non-finite warnings already logged
        self.nonfinite_guard = bool(nonfinite_guard)

    def __setattr__(self, name: str, value: Any) -> None:
        # The teacher is kept out of the module tree: whatever walks
        # `parameters()`/`named_children()` (optimizer constructors and their
        # `paramwise_cfg`, DDP, SyncBN conversion, parameter counts,
        # `init_weights`, checkpoints) sees the student and connectors
        # only, exactly the trainable model.
        if name == 'teacher' and isinstance(value, nn.Module):
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
        # metrics work unchanged.
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List]) -> Dict[str, torch.Tensor]:
        """The student's own losses plus one key per distillation term."""
        with self.student_taps as student_out:
            losses = _rename_bare_loss(
                self.student(inputs, data_samples, mode='loss'))
        clash = set(self.terms) & set(losses)
        if clash:
            raise ValueError(f'`distill_losses` keys {sorted(clash)} are '
                             'already losses of the student; rename them.')
        if self.distill_scale == 0:
            # Distillation switched off: save the teacher's forward, keep
            # the keys so logs stay aligned. Connectors still join the
            # graph (times 0), or DDP would stop on unused parameters.
            zero = sum((p.sum() * 0 for p in self.terms.parameters()),
                       next(self.student.parameters()).new_zeros(()))
            losses.update({name: zero for name in self.terms})
            return losses
        teacher_out = self.run_teacher(inputs, data_samples)
        if self.nonfinite_guard:
            teacher_out = self._guard_teacher_taps(teacher_out, inputs,
                                                   data_samples)
        for name, term in self.terms.items():
            losses[name] = self.distill_scale * term(
                student_out[term.student_tap], teacher_out[term.teacher_tap])
        if self.nonfinite_guard:
            self._guard_terms(losses, inputs)
        return losses

    def teacher_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """The batch the teacher's own data preprocessor would have made
        from the raw images behind the student's ``inputs``."""
        return inputs

    def run_teacher(self,
                    inputs: torch.Tensor,
                    data_samples: Optional[List],
                    fp32: bool = False) -> Taps:
        """Run the teacher for its taps only (no targets, no losses) and
        return what each teacher tap recorded; ``fp32=True`` without the
        teacher's autocast."""
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
            return self.fast_teacher(
                lambda: self._record_teacher(inputs, data_samples))

    def _record_teacher(self, inputs: torch.Tensor,
                        data_samples: Optional[List]) -> Taps:
        with self.teacher_taps as outputs:
            if self.teacher_forward is None:
                self.teacher(inputs, data_samples, mode='tensor')
            else:
                self.teacher_forward(self.teacher, inputs, data_samples)
        return outputs

    def _guard_teacher_taps(self, outputs: Taps, inputs: torch.Tensor,
                            data_samples: Optional[List]) -> Taps:
        """Teacher taps must be finite; an fp16/bf16 overflow is recomputed
        in fp32 for this step (see :mod:`.nonfinite`)."""
        term_of = {term.teacher_tap: name for name, term in self.terms.items()}
        bad = nonfinite({t: _tensors_of_calls(outputs[t]) for t in term_of})
        if not bad:
            return outputs
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
        outputs = self.run_teacher(inputs, data_samples, fp32=True)
        bad = nonfinite({t: _tensors_of_calls(outputs[t]) for t in term_of})
        if bad:
            raise teacher_error(term_of[bad[0]], bad[0], recomputed=True)
        return outputs

    def _guard_terms(self, losses: Dict[str, Any],
                     inputs: torch.Tensor) -> None:
        """A non-finite distillation term stops the run before the step,
        unless an AMP loss scaler skips the step (see :mod:`.nonfinite`)."""
        bad = nonfinite({
            name: [losses[name]]
            for name in self.terms if isinstance(losses[name], torch.Tensor)
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
        raise term_error(bad[0], losses[bad[0]],
                         self.terms[bad[0]].student_tap)

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
                f'the teacher {redact_url(recorded)!r}, but this run uses '
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
    # Saved in every checkpoint: a URL without its user-info and query
    # string, which may hold a token.
    if ckpt is not None:
        return redact_url(str(ckpt))
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


def _forgive_extra_state(module: nn.Module, incompatible_keys) -> None:
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys if k != '_extra_state'
    ]
