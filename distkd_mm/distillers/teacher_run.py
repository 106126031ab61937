"""Everything about running the frozen teacher for one training step.

Its inputs (derived from the student's batch, see :mod:`.teacher_inputs`),
precision, memory layout, folding and compile (:mod:`.fast_teacher`), what
it records (the taps) and the fp32 retry of a half-precision overflow: one
object, so that ``Distiller.loss`` reads as student, teacher, terms, guard.
"""
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, List, Optional, Union

import torch
from torch import nn

from .fast_teacher import FastTeacher, Taps
from .nonfinite import nonfinite, teacher_error, tensors_of, warn_once
from .recorder import Recorder
from .teacher_inputs import MODES, TeacherInputs

AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


class TeacherRun:
    """Run the teacher for its taps only: no targets, no losses.

    Args:
        teacher: The frozen, eval-mode teacher.
        term_of: Teacher tap path -> the name of the term that uses it.
        inputs: Maps the student's batch to the teacher's.
        autocast: ``None``, ``'auto'``, ``'bf16'`` or ``'fp16'``.
        channels_last: True, False or ``'auto'`` (on CUDA, or with
            ``compile``).
        forward: A teacher-forward strategy run instead of
            ``teacher(..., mode='tensor')`` (see :mod:`.teacher_forward`).
        fuse: Fold BatchNorms (see :class:`.FastTeacher`).
        compile: Compile the backbone (see :class:`.FastTeacher`).
        guard: Check the taps for NaN/Inf and retry an overflow in fp32.
    """

    def __init__(self, teacher: nn.Module, term_of: Dict[str, str],
                 inputs: TeacherInputs, autocast: Optional[str],
                 channels_last: Union[bool, str], forward: Optional[Callable],
                 fuse: bool, compile: Union[bool, dict], guard: bool) -> None:
        self.teacher = teacher
        self.term_of = term_of
        self.inputs = inputs
        self.autocast = autocast
        self.channels_last = channels_last
        self.forward = forward
        self.guard = guard
        self.taps = Recorder(teacher, list(term_of), 'teacher')
        self.fast = FastTeacher(teacher, fuse, compile, list(term_of))
        self._is_channels_last = False
        self._warned: set = set()

    def student_records(self) -> ContextManager[Optional[Taps]]:
        """The scope, around the student's forward, in which the teacher
        forward records what it needs of the student's step (a two-stage
        student's RoIs); it gives None when the forward needs nothing."""
        recorder = self._student_recorder
        return nullcontext() if recorder is None else recorder

    @property
    def _student_recorder(self) -> Optional[Recorder]:
        return getattr(self.forward, 'student_recorder', None)

    def record_student(self, student: nn.Module, inputs: torch.Tensor,
                       data_samples: Optional[List]) -> Optional[Taps]:
        """What the teacher forward needs of a student step, from one
        student loss forward without gradients: for running the teacher
        alone (benchmarks, precision checks); None, and no student forward
        spent, when the forward needs nothing."""
        if self._student_recorder is None:
            return None
        with torch.no_grad(), self.student_records() as records:
            student(inputs, data_samples, mode='loss')
        return records

    def __call__(self,
                 inputs: torch.Tensor,
                 data_samples: Optional[List],
                 fp32: bool = False,
                 student: Optional[Taps] = None) -> Taps:
        """What each teacher tap recorded for the student's batch
        ``inputs``; ``fp32=True`` without the teacher's autocast;
        ``student`` is what :meth:`student_records` recorded."""
        inputs = self.inputs(inputs, data_samples)
        outputs = self._run(inputs, data_samples, fp32, student)
        if self.guard and not fp32:
            outputs = self._retry_overflow(outputs, inputs, data_samples,
                                           student)
        return outputs

    def _run(self, inputs: torch.Tensor, data_samples: Optional[List],
             fp32: bool, student: Optional[Taps]) -> Taps:
        device = _device(inputs)
        dtype = None if fp32 else teacher_dtype(self.autocast, device)
        precision = nullcontext() if dtype is None else torch.autocast(
            device_type=device, dtype=dtype)
        if _use_channels_last(self.channels_last, inputs,
                              bool(self.fast.compile_options)):
            if not self._is_channels_last:
                self.teacher.to(memory_format=torch.channels_last)
                self._is_channels_last = True
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), precision:
            return self.fast(
                lambda: self._record(inputs, data_samples, student))

    def _record(self, inputs: torch.Tensor, data_samples: Optional[List],
                student: Optional[Taps]) -> Taps:
        with self.taps as outputs:
            if self.forward is None:
                self.teacher(inputs, data_samples, mode='tensor')
            elif student is None:
                self.forward(self.teacher, inputs, data_samples)
            else:
                self.forward(self.teacher, inputs, data_samples, student)
        return outputs

    def _retry_overflow(self, outputs: Taps, inputs: torch.Tensor,
                        data_samples: Optional[List],
                        student: Optional[Taps]) -> Taps:
        """Teacher taps must be finite; an fp16/bf16 overflow is recomputed
        in fp32 for this step (see :mod:`.nonfinite`)."""
        bad = self._nonfinite(outputs)
        if not bad:
            return outputs
        check_finite_inputs(inputs, 'teacher')
        dtype = teacher_dtype(self.autocast, _device(inputs))
        if dtype is None:
            raise teacher_error(self.term_of[bad[0]], bad[0], recomputed=False)
        for tap in bad:
            warn_once(
                self._warned, f'teacher:{tap}',
                f'{self.term_of[tap]}: teacher tap {tap!r} gave NaN/Inf under '
                f'{dtype} autocast; recomputing the teacher in fp32 for each '
                'such step (logged once per tap).')
        outputs = self._run(inputs, data_samples, True, student)
        bad = self._nonfinite(outputs)
        if bad:
            raise teacher_error(self.term_of[bad[0]], bad[0], recomputed=True)
        return outputs

    def _nonfinite(self, outputs: Taps) -> List[str]:
        return nonfinite({
            tap: [t for call in outputs[tap] for t in tensors_of(call)]
            for tap in self.term_of
        })


def check_run_options(autocast: Optional[str], channels_last: Union[bool, str],
                      preprocess: str) -> None:
    """Refuse bad teacher options before anything is built."""
    if autocast not in (None, 'auto', *AUTOCAST_DTYPES):
        raise ValueError('`teacher_autocast` should be None, "auto", '
                         f'"bf16" or "fp16", but got {autocast!r}.')
    if channels_last not in (True, False, 'auto'):
        raise ValueError('`teacher_channels_last` should be True, False '
                         f'or "auto", but got {channels_last!r}.')
    if preprocess not in MODES:
        raise ValueError(f'`teacher_preprocess` should be one of {MODES}, '
                         f'but got {preprocess!r}.')


def check_finite_inputs(inputs: Any, side: str) -> None:
    """Name a NaN/Inf input batch as such, before the weights are blamed."""
    if not isinstance(inputs, torch.Tensor) or inputs.dim() == 0:
        return
    bad = ~torch.isfinite(inputs.flatten(1)).all(dim=1)
    if bad.any():
        rows = bad.nonzero().flatten().tolist()
        raise FloatingPointError(
            f'The {side}\'s input batch should be finite, but samples '
            f'{rows[:10]} (index in the batch) hold NaN/Inf pixels: the data '
            'is damaged, not the model. Check those images and the '
            'pipeline (e.g. a division by zero in a transform).')


def teacher_dtype(choice: Optional[str], device: str) -> Optional[torch.dtype]:
    """The teacher's autocast dtype for ``choice`` on ``device``."""
    if choice != 'auto':
        return None if choice is None else AUTOCAST_DTYPES[choice]
    if device != 'cuda':
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _device(inputs: Any) -> str:
    return inputs.device.type if isinstance(inputs, torch.Tensor) else 'cpu'


def _use_channels_last(choice: Union[bool, str], inputs: Any,
                       compiled: bool) -> bool:
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 4:
        return False
    if choice != 'auto':
        return bool(choice)
    # CUDA convolutions, and inductor's frozen ones on a CPU, run faster
    # channels-last; eager CPU convolutions gain nothing (docs/speed.md).
    return inputs.is_cuda or compiled
