"""Teacher-forward strategies: how to run a teacher whose ``tensor`` mode
computes more, or other, than the taps need.

A strategy is built from ``Distiller(teacher_forward=dict(type=...))`` and
called as ``strategy(teacher, inputs, data_samples)`` inside the teacher's
tap scope, in place of ``teacher(inputs, data_samples, mode='tensor')``.
Two optional parts:

- ``attach(student, teacher)``: called once at build time, to check the
  teacher's layout (a wrong model fails there, not at the first step);
- ``student_recorder``: a :class:`~.recorder.Recorder` on the student that
  the Distiller enters around the student's forward, exactly like its own
  taps (scoped to the step: no hook stays on the student between steps).
  What it recorded is passed as the call's fourth argument.

The strategies here:

- :class:`EncoderDecoderHeads` (mmseg): every head runs, also the
  auxiliary ones that ``tensor`` mode skips;
- :class:`RoITeacherForward` (two-stage mmdet): the teacher classifies the
  RoIs the student's sampler picked, recorded from the student's RoI
  extractor's inputs.
"""
from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from .recorder import Recorder, Records


@MODELS.register_module()
class EncoderDecoderHeads:
    """Teacher forward for mmseg ``EncoderDecoder`` models: every head runs.

    mmseg's ``tensor`` mode (``EncoderDecoder._forward``) runs the backbone,
    neck and decode head only, so a tap on ``auxiliary_head.conv_seg`` would
    never fire on the teacher. This forward runs ``extract_feat``, the decode
    head and every auxiliary head (a single head or a ``ModuleList``),
    called as modules so taps on the heads themselves fire too, and nothing
    else: no targets, no losses, and no
    resize of the logits to the input size, so taps see the heads' own
    output resolution (1/8 of the crop for the dilated ResNets), as in the
    official DIST segmentation code.

    Labels are never read, so the DIST terms include every pixel, also the
    ignore-index (255) and padded ones, as the official code does.

    Use it as ``teacher_forward=dict(type='EncoderDecoderHeads')`` in a
    ``Distiller`` config.
    """

    def attach(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check at build time that the teacher has what this forward uses.

        Args:
            student: The student model (unused).
            teacher: The teacher model.
        """
        for name in ('extract_feat', 'decode_head'):
            if not hasattr(teacher, name):
                raise TypeError(
                    '`teacher` should be an mmseg EncoderDecoder (with '
                    f'`extract_feat` and `decode_head`), but got '
                    f'{type(teacher).__name__}, which has no `{name}`. '
                    'Drop `teacher_forward` for other models.')

    def __call__(self,
                 teacher: nn.Module,
                 inputs: torch.Tensor,
                 data_samples: Optional[list] = None) -> List[torch.Tensor]:
        """Run the teacher's backbone and heads; taps record the outputs.

        Args:
            teacher: The (frozen, eval-mode) EncoderDecoder teacher.
            inputs: The preprocessed batch, (N, 3, H, W).
            data_samples: Unused; the teacher needs no labels.

        Returns:
            The decode head's output followed by each auxiliary head's.
        """
        feats = teacher.extract_feat(inputs)
        outputs = [teacher.decode_head(feats)]
        aux = getattr(teacher, 'auxiliary_head', None)
        if aux is not None:
            heads = aux if isinstance(aux, nn.ModuleList) else [aux]
            outputs += [head(feats) for head in heads]
        return outputs


@MODELS.register_module()
class RoITeacherForward:
    """Run a two-stage teacher's RoI head on the student's sampled RoIs.

    The RoI classifier of a two-stage student sees the RoIs its own RPN
    proposed and its sampler picked; a teacher run on its own would classify
    other boxes, and its logits would not line up row by row. So the teacher
    runs only its backbone and neck, pools its features at the student's
    RoIs and applies its (first-stage) bbox head: one teacher logit row per
    student RoI, with no teacher RPN, mask head, later cascade stages,
    targets or losses.

    Use as ``Distiller(teacher_forward=dict(type='RoITeacherForward'))``
    with taps on the two bbox heads' classifiers, e.g. student
    ``roi_head.bbox_head.fc_cls`` and (Cascade R-CNN teacher)
    ``roi_head.bbox_head.0.fc_cls``. Its :attr:`student_recorder` records
    the RoIs the student's RoI extractor is called with during the
    student's forward of the step (the student runs first).

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
        self.student_recorder: Optional[Recorder] = None

    def attach(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check the teacher's layout; record the student's RoIs in steps.

        Called once by the ``Distiller`` after both models are built, so a
        wrong path or a teacher without an RoI head fails at build time.
        """
        self._teacher_modules(teacher)
        self.student_recorder = Recorder(
            student, [self.student_roi_extractor],
            'student',
            inputs=self._rois_of)

    def _rois_of(self, module: nn.Module, args: tuple, kwargs: dict) -> Tensor:
        """The ``rois`` argument of one student RoI-extractor call."""
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
        return rois.detach()

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

    def __call__(self,
                 teacher: nn.Module,
                 inputs: Tensor,
                 data_samples: Optional[Sequence[Any]],
                 student: Optional[Records] = None) -> List[Tensor]:
        """Classify the student's RoIs of this step with the teacher.

        Args:
            teacher: The frozen two-stage teacher.
            inputs: The batch the student saw (already preprocessed).
            data_samples: Unused: the teacher needs no targets.
            student: What :attr:`student_recorder` recorded in this step's
                student forward (extractor path -> the RoIs of each call).

        Returns:
            The teacher's class logits, one (num_rois, num_classes + 1)
            tensor per student RoI-extractor call, rows aligned with the
            student's RoIs.
        """
        all_rois = (student or {}).get(self.student_roi_extractor)
        if not all_rois:
            raise RuntimeError(
                'RoITeacherForward got no RoIs from the student\'s '
                f'{self.student_roi_extractor!r} in this step. The student '
                'must run first, inside `student_recorder`, and '
                '`student_roi_extractor` should name the module its RoI '
                'head calls with the sampled RoIs.')
        extractor, shared_head, head = self._teacher_modules(teacher)
        feats = teacher.extract_feat(inputs)
        # RoIAlign casts the boxes to the features' dtype: under a bf16
        # teacher that rounds coordinates to several pixels, so pooling runs
        # in fp32 (cheap next to the backbone) and the head in the autocast.
        feats = [f.float() for f in feats[:extractor.num_inputs]]
        logits = []
        for rois in all_rois:
            with torch.autocast(inputs.device.type, enabled=False):
                bbox_feats = extractor(feats, rois.float())
            if shared_head is not None:
                bbox_feats = shared_head(bbox_feats)
            cls_score, _ = head(bbox_feats)
            logits.append(cls_score)
        return logits
