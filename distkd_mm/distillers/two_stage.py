"""Two-stage detection: the teacher classifies the student's sampled RoIs.

The RoI classifier of a two-stage student sees the RoIs its own RPN proposed
and its sampler picked; a teacher run on its own would classify other boxes,
and its logits would not line up row by row. So the teacher runs only its
backbone and neck, pools its features at the student's RoIs and applies its
(first-stage) bbox head: one teacher logit row per student RoI, with no
teacher RPN, mask head, later cascade stages, targets or losses.
"""
from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .recorder import get_submodule


@MODELS.register_module()
class RoITeacherForward:
    """Run a two-stage teacher's RoI head on the student's sampled RoIs.

    Use as ``Distiller(teacher_forward=dict(type='RoITeacherForward'))``
    with taps on the two bbox heads' classifiers, e.g. student
    ``roi_head.bbox_head.fc_cls`` and (Cascade R-CNN teacher)
    ``roi_head.bbox_head.0.fc_cls``. At build time, :meth:`attach` adds a
    forward pre-hook to the student's RoI extractor that keeps the RoIs it
    is called with while training (the student runs first in each step);
    the call then feeds those RoIs to the teacher.

    Args:
        student_roi_extractor: Path of the student's bbox RoI extractor,
            called as ``extractor(feats, rois)``.
            Defaults to ``'roi_head.bbox_roi_extractor'``.
        stage: Which stage of a cascade teacher to use (its extractor and
            bbox head are ``ModuleList``s); ignored for a single-stage RoI
            head. Defaults to 0, the stage trained on the same kind of
            proposals as the student's head.
    """

    def __init__(self,
                 student_roi_extractor: str = 'roi_head.bbox_roi_extractor',
                 stage: int = 0) -> None:
        if not isinstance(student_roi_extractor, str):
            raise TypeError('`student_roi_extractor` should be a module path '
                            'str, but got '
                            f'{type(student_roi_extractor).__name__}.')
        if isinstance(stage, bool) or not isinstance(stage, int) or stage < 0:
            raise ValueError(
                f'`stage` should be a non-negative int, but got {stage!r}.')
        self.student_roi_extractor = student_roi_extractor
        self.stage = stage
        self._rois: List[Tensor] = []
        self._handles: List[RemovableHandle] = []

    def attach(self, student: nn.Module, teacher: nn.Module) -> None:
        """Hook the student's RoI extractor; check the teacher's layout.

        Called once by the ``Distiller`` after both models are built, so a
        wrong path or a teacher without an RoI head fails at build time.
        """
        extractor = get_submodule(student, self.student_roi_extractor,
                                  'student')
        self._teacher_modules(teacher)
        self.remove()
        # A new student forward starts a new step: forget the last RoIs, so
        # a failed step never leaks stale RoIs into the next one.
        self._handles = [
            extractor.register_forward_pre_hook(
                self._capture, with_kwargs=True),
            student.register_forward_pre_hook(self._reset)
        ]

    def remove(self) -> None:
        """Detach from the student (before attaching to another)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _reset(self, module: nn.Module, args: tuple) -> None:
        self._rois.clear()

    def _capture(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if not module.training:
            return
        rois = args[1] if len(args) > 1 else kwargs.get('rois')
        valid = (
            isinstance(rois, Tensor) and rois.dim() == 2
            and rois.size(-1) == 5)
        if not valid:
            got = (f'shape {tuple(rois.shape)}'
                   if isinstance(rois, Tensor) else type(rois).__name__)
            raise RuntimeError(
                '`student_roi_extractor` should name a module called as '
                '`extractor(feats, rois)` with rois of shape (num_rois, 5), '
                f'but {self.student_roi_extractor!r} got {got} as its '
                'second argument. Point it at the student\'s '
                '`roi_head.bbox_roi_extractor`.')
        self._rois.append(rois.detach())

    def _teacher_modules(self, teacher: nn.Module) -> Tuple[nn.Module, ...]:
        """Return the teacher's (roi extractor, shared head, bbox head)."""
        roi_head = getattr(teacher, 'roi_head', None)
        if (not hasattr(teacher, 'extract_feat') or roi_head is None
                or not hasattr(roi_head, 'bbox_roi_extractor')
                or not hasattr(roi_head, 'bbox_head')):
            raise ValueError(
                '`teacher` should be a two-stage detector with '
                '`extract_feat` and `roi_head.bbox_roi_extractor` / '
                f'`roi_head.bbox_head`, but got {type(teacher).__name__}. '
                'Use RoITeacherForward only with a two-stage teacher; '
                'single-stage teachers need no teacher_forward.')
        extractor, head = roi_head.bbox_roi_extractor, roi_head.bbox_head
        if isinstance(extractor, nn.ModuleList):
            if self.stage >= len(extractor):
                raise ValueError(
                    f'`stage` should be below the teacher\'s {len(extractor)} '
                    f'cascade stages, but got {self.stage}.')
            extractor, head = extractor[self.stage], head[self.stage]
        shared_head = getattr(roi_head, 'shared_head', None)
        return extractor, shared_head, head

    def __call__(self, teacher: nn.Module, inputs: Tensor,
                 data_samples: Optional[Sequence[Any]]) -> List[Tensor]:
        """Classify the captured student RoIs with the teacher.

        Args:
            teacher: The frozen two-stage teacher.
            inputs: The batch the student saw (already preprocessed).
            data_samples: Unused: the teacher needs no targets.

        Returns:
            The teacher's class logits, one (num_rois, num_classes + 1)
            tensor per student RoI-extractor call, rows aligned with the
            student's RoIs.
        """
        if not self._rois:
            raise RuntimeError(
                'RoITeacherForward captured no RoIs from the student\'s '
                f'{self.student_roi_extractor!r} in this step. The student '
                'must run first, in training mode, and '
                '`student_roi_extractor` should name the module its RoI '
                'head calls with the sampled RoIs.')
        extractor, shared_head, head = self._teacher_modules(teacher)
        feats = teacher.extract_feat(inputs)
        # RoIAlign casts the boxes to the features' dtype: under a bf16
        # teacher that rounds coordinates to several pixels, so pooling runs
        # in fp32 (cheap next to the backbone) and the head in the autocast.
        feats = [f.float() for f in feats[:extractor.num_inputs]]
        logits = []
        for rois in self._rois:
            with torch.autocast(inputs.device.type, enabled=False):
                bbox_feats = extractor(feats, rois.float())
            if shared_head is not None:
                bbox_feats = shared_head(bbox_feats)
            cls_score, _ = head(bbox_feats)
            logits.append(cls_score)
        # The RoIs stay until the student's next forward: a step may run
        # the teacher again (an fp32 recompute, the fold check).
        return logits
