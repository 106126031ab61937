"""The model wrapper that trains a student with a frozen teacher beside it."""
import copy
import logging
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import nn

from ..utils.mmcv_ops import watch_mmcv_ops
from ..utils.urls import redact_url
from .alignment import check_alignment
from .fast_teacher import Taps
from .nonfinite import nonfinite, scaler_in_charge, term_error, warn_once
from .recorder import Recorder
from .student_load import fit_checkpoint
from .teacher import TeacherCfg, build_teacher
from .teacher_inputs import TeacherInputs
from .teacher_run import TeacherRun, check_finite_inputs, check_run_options
from .term import build_terms


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
            GPUs, and a compiled teacher on CPUs). ``'auto'`` (default)
            does it on CUDA and for ``teacher_compile``.
        teacher_forward: How to run the teacher when ``tensor`` mode does
            more or other than the taps need (two-stage detectors, mmseg's
            auxiliary heads): the config of a teacher-forward strategy, see
            :mod:`.teacher_forward`.
        teacher_fuse: Fold the teacher's BatchNorms into the convolutions
            they follow, at its first forward (checked there against the
            unfolded teacher; exact up to rounding). Off by default.
        teacher_compile: ``torch.compile`` the teacher's backbone (True, or
            a dict of ``torch.compile`` options); falls back to eager with
            one log line when compilation fails. Off by default.
        teacher_preprocess: How the teacher gets its batch. ``'own'``
            (default): what its own data preprocessor would have made from
            the raw images, derived from the student's batch each step
            (mean/std and channel order undone and redone; see
            :mod:`.teacher_inputs`), refused at build time where that cannot
            be exact (another padding divisor or size). ``'normalize_only'``
            derives mean/std and channel order but accepts the student's
            padding and size; ``'student'`` gives the teacher the student's
            batch as it is. A teacher whose config has no
            ``data_preprocessor`` takes the student's batch.
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
                 teacher_preprocess: str = 'own',
                 nonfinite_guard: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **unknown: Any) -> None:
        _reject_unknown_args(unknown)
        check_run_options(teacher_autocast, teacher_channels_last,
                          teacher_preprocess)
        student = copy.deepcopy(student)
        if data_preprocessor is not None:
            student.setdefault('data_preprocessor', data_preprocessor)
        student_model = MODELS.build(student)
        super().__init__(
            data_preprocessor=student_model.data_preprocessor,
            init_cfg=init_cfg)
        self.student = student_model
        self.teacher, own_preprocessor = build_teacher(teacher, teacher_ckpt,
                                                       teacher_strict,
                                                       teacher_pretrained,
                                                       teacher_ckpt_converter)
        self.terms = build_terms(distill_losses)
        check_alignment(self.student, self.teacher, self.terms)
        self.student_taps = Recorder(
            self.student, [term.student_tap for term in self.terms.values()],
            'student')
        # Set by DistillHook's warm-up / stop schedule; 0 skips the teacher.
        self.distill_scale = 1.0
        forward = None
        if teacher_forward is not None:
            forward = MODELS.build(teacher_forward)
            if hasattr(forward, 'attach'):
                forward.attach(self.student, self.teacher)
        self.teacher_run = TeacherRun(
            self.teacher, {
                term.teacher_tap: name
                for name, term in self.terms.items()
            },
            TeacherInputs(self.data_preprocessor,
                          getattr(self.teacher, 'data_preprocessor',
                                  None), teacher_preprocess,
                          own_preprocessor), teacher_autocast,
            teacher_channels_last, forward, teacher_fuse, teacher_compile,
            bool(nonfinite_guard))
        # Checkpoints written before the teacher was recorded lack it.
        self.register_load_state_dict_post_hook(_forgive_extra_state)
        # A plain student's load_from gets its prefix; a resume must fit.
        self.register_load_state_dict_pre_hook(fit_checkpoint)
        watch_mmcv_ops(self)  # a clear error when mmcv lacks CUDA kernels
        # Recorded in checkpoints; a resume with another teacher warns.
        self.teacher_source = _teacher_source(teacher, teacher_ckpt,
                                              teacher_pretrained)
        self._warned: set = set()  # non-finite warnings already logged

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

    def __deepcopy__(self, memo: dict) -> 'Distiller':
        # MMEngine's EMAHook (and anything else that deep-copies the
        # model) averages the student; the frozen teacher and the way it
        # runs are shared, never a second copy in memory.
        memo[id(self.teacher)] = self.teacher
        memo[id(self.teacher_run)] = self.teacher_run
        if self.teacher_run.forward is not None:
            memo[id(self.teacher_run.forward)] = self.teacher_run.forward
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        for key, value in self.__dict__.items():
            object.__setattr__(copied, key, copy.deepcopy(value, memo))
        return copied

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
        with self.student_taps as student_out, \
                self.teacher_run.student_records() as for_teacher:
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
        teacher_out = self.teacher_run(
            inputs, data_samples, student=for_teacher)
        for name, term in self.terms.items():
            losses[name] = self.distill_scale * term(
                student_out[term.student_tap], teacher_out[term.teacher_tap])
        if self.teacher_run.guard:
            self._guard_terms(losses, inputs)
        return losses

    def teacher_inputs(self,
                       inputs: torch.Tensor,
                       data_samples: Optional[List] = None) -> torch.Tensor:
        """The batch the teacher's own data preprocessor would have made
        from the raw images behind the student's ``inputs``."""
        return self.teacher_run.inputs(inputs, data_samples)

    def run_teacher(self,
                    inputs: torch.Tensor,
                    data_samples: Optional[List],
                    fp32: bool = False,
                    student: Optional[Taps] = None) -> Taps:
        """What each teacher tap recorded for the student's batch;
        ``fp32=True`` without the teacher's autocast. ``student``: what
        ``teacher_run.student_records()`` recorded in a student forward,
        for a teacher forward that needs it (a two-stage teacher's RoIs)."""
        return self.teacher_run(inputs, data_samples, fp32, student)

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
        check_finite_inputs(inputs, 'student')
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


def _forgive_extra_state(module: nn.Module, incompatible_keys) -> None:
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys if k != '_extra_state'
    ]
