"""Attach a teacher to a plain OpenMMLab config: ``--teacher`` on the CLI.

The seed's ``--teacher-model`` experience for MMEngine configs: take the
mmpretrain, mmdet or mmseg config a user already trains and wrap its model
in a ``Distiller`` with the taps and losses of the seed for that task.
"""
import copy
import difflib
from typing import Optional

from mmengine.config import Config, ConfigDict

from ..distillers.teacher import teacher_model_cfg


def _dist(weight: float = 1.0, **kwargs) -> dict:
    return dict(type='DISTLoss', loss_weight=weight, **kwargs)


def _entry(student: str, teacher: str, loss: dict, **kwargs) -> dict:
    return dict(student=student, teacher=teacher, loss=loss, **kwargs)


def _cls(student: dict, teacher: dict) -> dict:
    # ImageNet baseline setting: tau 1, weight 2 (CE keeps weight 1).
    return dict(
        distill_losses=dict(
            loss_dist=_entry('head.fc', 'head.fc', _dist(2.0, tau=1.0))))


def _kd(student: dict, teacher: dict) -> dict:
    # The paper's KD baseline; set the student's CE weight to 0.9 yourself.
    return dict(
        distill_losses=dict(
            loss_kd=_entry('head.fc', 'head.fc', dict(type='KDLoss',
                                                      tau=4.0))))


def _retinanet(student: dict, teacher: dict) -> dict:
    # Sigmoid heads: one DIST term per FPN level (calls pair in order).
    return dict(
        distill_losses=dict(
            loss_dist=_entry('bbox_head.retina_cls', 'bbox_head.retina_cls',
                             _dist(use_sigmoid=True))))


def _two_stage(student: dict, teacher: dict) -> dict:
    cascade = 'Cascade' in teacher.get('roi_head', {}).get('type', '')
    head = 'roi_head.bbox_head.0.fc_cls' if cascade else \
        'roi_head.bbox_head.fc_cls'
    return dict(
        teacher_forward=dict(type='RoITeacherForward'),
        distill_losses=dict(
            loss_dist=_entry('roi_head.bbox_head.fc_cls', head, _dist())))


def _seg(student: dict, teacher: dict) -> dict:
    # Every pixel a row; the auxiliary head's term weighs 0.4, as the seed.
    losses = dict(
        loss_dist=_entry(
            'decode_head.conv_seg',
            'decode_head.conv_seg',
            _dist(),
            resize_teacher=True))
    if student.get('auxiliary_head') and teacher.get('auxiliary_head'):
        losses['loss_dist_aux'] = _entry(
            'auxiliary_head.conv_seg',
            'auxiliary_head.conv_seg',
            _dist(0.4),
            resize_teacher=True)
    return dict(
        teacher_forward=dict(type='EncoderDecoderHeads'),
        distill_losses=losses)


def _with_mimic(preset):

    def build(student: dict, teacher: dict) -> dict:
        cfg = preset(student, teacher)
        neck = student.get('neck', {})
        cfg['distill_losses']['loss_mimic'] = _entry(
            'neck',
            'neck',
            dict(type='MimicLoss', loss_weight=1.0),
            connector=dict(
                type='FPNAdapter',
                in_channels=neck.get('out_channels', 256),
                out_channels=teacher.get('neck', {}).get('out_channels', 256),
                num_levels=neck.get('num_outs', 5)))
        return cfg

    return build


PRESETS = {
    'cls': _cls,
    'kd': _kd,
    'retinanet': _retinanet,
    'retinanet+mimic': _with_mimic(_retinanet),
    'two-stage': _two_stage,
    'two-stage+mimic': _with_mimic(_two_stage),
    'seg': _seg,
}

# Model types of the libraries, and the preset each gets by default.
_AUTO = {
    'ImageClassifier': 'cls',
    'RetinaNet': 'retinanet',
    'FasterRCNN': 'two-stage',
    'MaskRCNN': 'two-stage',
    'TwoStageDetector': 'two-stage',
    'EncoderDecoder': 'seg',
}


def guess_preset(student: dict) -> str:
    """The preset for a student model type, e.g. ``RetinaNet``."""
    kind = str(student.get('type', '')).split('.')[-1]
    if kind not in _AUTO:
        raise ValueError(
            f'`--distill` should be given for a {kind!r} student (no preset '
            f'is known for it); pick one of {sorted(PRESETS)} or write '
            '`distill_losses` in a config.')
    return _AUTO[kind]


def attach_teacher(cfg: Config,
                   teacher: str,
                   teacher_ckpt: Optional[str] = None,
                   preset: Optional[str] = None,
                   teacher_pretrained: bool = False) -> Config:
    """Wrap ``cfg.model`` in a Distiller with ``teacher`` and a preset.

    Args:
        cfg: A plain training config (its ``model`` is the student).
        teacher: The teacher's config file or ``'pkg::path'``.
        teacher_ckpt: The teacher's weights (path, URL, zoo scheme).
        preset: One of :data:`PRESETS`; guessed from the student's type
            when None.
        teacher_pretrained: Take the weights from the package's metafile.

    Returns:
        A new config; ``cfg`` is left as it was.
    """
    cfg = copy.deepcopy(cfg)
    student = cfg.model
    if student.get('type') == 'Distiller':
        raise ValueError('`--teacher` should be given a plain student '
                         'config, but its model is already a Distiller; '
                         'drop --teacher or use the student config.')
    preset = preset or guess_preset(student)
    if preset not in PRESETS:
        close = difflib.get_close_matches(preset, list(PRESETS), n=2)
        raise ValueError(f'`--distill` should be one of {sorted(PRESETS)}, '
                         f'but got {preset!r}. Did you mean {close}?')
    teacher_model, _ = teacher_model_cfg(teacher)
    cfg.model = ConfigDict(
        type='Distiller',
        student=student,
        teacher=teacher,
        teacher_ckpt=teacher_ckpt,
        teacher_pretrained=teacher_pretrained,
        **PRESETS[preset](dict(student), dict(teacher_model)))
    imports = cfg.get('custom_imports', {}).get('imports', [])
    if 'distkd_mm' not in imports:
        cfg.custom_imports = dict(
            imports=list(imports) + ['distkd_mm'], allow_failed_imports=False)
    return cfg


def load_config(path: str) -> Config:
    """A config file, or ``'pkg::path'`` from an installed library."""
    if '::' in path:
        from mmengine.hub import get_config
        return get_config(path)
    return Config.fromfile(path)
