"""Attach a teacher to a plain OpenMMLab config: ``--teacher`` on the CLI.

The seed's ``--teacher-model`` experience for MMEngine configs: take the
mmpretrain, mmdet or mmseg config a user already trains and wrap its model
in a ``Distiller`` with the taps and losses of the seed for that task.
The taps and weights are read from the same ``_base_`` fragments of
configs/ that the shipped configs inherit (see :data:`PRESETS`).
"""
import copy
import difflib
import functools
import inspect
import os.path as osp
from typing import Callable, Dict, Optional

from mmengine.config import Config, ConfigDict

from ..distillers.teacher import teacher_model_cfg
from ..utils.config_paths import resolve_config_path


def _config_dir() -> str:
    # Installed: distkd_mm/.mim/configs (links in an editable install,
    # copies in a wheel; see setup.py). A source checkout: its configs/.
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    roots = (osp.join(package, '.mim',
                      'configs'), osp.join(osp.dirname(package), 'configs'))
    for root in roots:
        if osp.isdir(root):
            return root
    raise FileNotFoundError(
        f'the configs of distkd_mm should be in {roots[0]} or {roots[1]}, '
        'but neither exists; reinstall the package (`pip install '
        'distkd_mm`, or `pip install -e .` in a checkout).')


@functools.lru_cache(maxsize=None)
def _load_fragment(name: str) -> dict:
    return Config.fromfile(
        osp.join(_config_dir(), name), import_custom_modules=False).to_dict()


def recipe_terms(name: str) -> dict:
    """A recipe's terms, as its ``_base_`` fragment under configs/ holds
    them: each top-level ``loss_*`` entry goes into ``distill_losses``, and
    ``teacher_forward`` is kept where the fragment sets one.

    Args:
        name: The fragment's path under configs/, e.g.
            ``'mmdet/_base_/dist_retinanet.py'``.

    Returns:
        A new dict with ``distill_losses`` (and ``teacher_forward``).
    """
    fragment = copy.deepcopy(_load_fragment(name))
    terms = dict(distill_losses={
        key: value
        for key, value in fragment.items() if key.startswith('loss_')
    })
    if 'teacher_forward' in fragment:
        terms['teacher_forward'] = fragment['teacher_forward']
    return terms


def _from(name: str) -> Callable[[dict, dict], dict]:

    def build(student: dict, teacher: dict) -> dict:
        return recipe_terms(name)

    return build


def _two_stage(student: dict, teacher: dict) -> dict:
    terms = recipe_terms('mmdet/_base_/dist_two_stage.py')
    # The fragment taps the seed's Cascade teacher's first stage; a plain
    # two-stage teacher has one bbox head, where the student has its own.
    if 'Cascade' not in teacher.get('roi_head', {}).get('type', ''):
        term = terms['distill_losses']['loss_dist']
        term['teacher'] = term['student']
    return terms


def _seg(student: dict, teacher: dict) -> dict:
    terms = recipe_terms('mmseg/_base_/dist_heads.py')
    # The auxiliary heads' term only when both models have one (a list of
    # auxiliary heads has no one `conv_seg` to pair).
    if not (isinstance(student.get('auxiliary_head'), dict)
            and isinstance(teacher.get('auxiliary_head'), dict)):
        terms['distill_losses'].pop('loss_dist_aux')
    return terms


def _with_mimic(preset: Callable[[dict, dict],
                                 dict]) -> Callable[[dict, dict], dict]:

    def build(student: dict, teacher: dict) -> dict:
        terms = preset(student, teacher)
        mimic = recipe_terms('mmdet/_base_/fpn_mimic.py')['distill_losses']
        adapter = mimic['loss_mimic']['connector']
        # One 1x1 conv per student level, from its channels to the
        # teacher's (the fragment's values where a neck does not say).
        neck = student.get('neck', {})
        adapter.update(
            in_channels=neck.get('out_channels', adapter['in_channels']),
            out_channels=teacher.get('neck', {}).get('out_channels',
                                                     adapter['out_channels']),
            num_levels=neck.get('num_outs', adapter['num_levels']))
        terms['distill_losses'].update(mimic)
        return terms

    return build


# mmdet dense heads whose classification branch gives one class map per
# FPN level, in the same layout for every model of the head's type: the
# attribute to tap, by head class (a subclass inherits its base's entry).
# A shared conv runs once per level; a ModuleList (RTMDet's separate-BN
# head, YOLOX) is tapped member by member (see Recorder): either way the
# k-th call of the student pairs with the k-th of the teacher.
DENSE_CLS_TAPS: Dict[str, str] = {
    'RetinaHead': 'retina_cls',  # also FSAF, FreeAnchor, SABL
    'ATSSHead': 'atss_cls',  # also PAA
    'DDODHead': 'atss_cls',
    'GFLHead': 'gfl_cls',  # also LD
    'VFNetHead': 'vfnet_cls',
    'TOODHead': 'tood_cls',  # the logits before the task alignment
    'AnchorFreeHead': 'conv_cls',  # FCOS, FoveaBox, AutoAssign, NAS-FCOS...
    'RTMDetHead': 'rtm_cls',  # RTMDetSepBNHead: a ModuleList
    'YOLOXHead': 'multi_level_conv_cls',  # a ModuleList
}

# Families whose class logits belong to queries: a query's index says
# nothing about which object it finds (queries are matched to objects by
# Hungarian assignment in every forward), so student query i and teacher
# query i are not the same object and their logits do not line up.
QUERY_DETECTORS = ('DETR', 'DeformableDETR', 'ConditionalDETR', 'DABDETR',
                   'DINO', 'MaskFormer', 'Mask2Former')
QUERY_HEADS = ('MaskFormerHead', 'Mask2FormerHead')


def _type_name(cfg: Optional[dict]) -> str:
    return str((cfg or {}).get('type', '')).split('.')[-1]


def query_family(student: dict) -> Optional[str]:
    """The query-based model type (or head type) of ``student``, if any."""
    kind = _type_name(student)
    if kind in QUERY_DETECTORS:
        return kind
    for key in ('decode_head', 'panoptic_head', 'bbox_head'):
        head = student.get(key)
        if isinstance(head, dict) and (_type_name(head) in QUERY_HEADS
                                       or 'DETR' in _type_name(head)
                                       or _type_name(head) == 'DINOHead'):
            return _type_name(head)
    return None


def refuse_query_family(student: dict) -> None:
    """Fail for a student whose logits are per query: say why, and what
    to distil instead."""
    family = query_family(student)
    if family is None:
        return
    raise ValueError(
        f'`--teacher` should be given a model whose class logits line up '
        f'between student and teacher, but got a {family} student: its '
        'logits are per query, and queries are matched to objects by '
        'Hungarian assignment in every forward, so student query i and '
        'teacher query i are not the same object (DIST would compare '
        'unrelated predictions). Distil the features instead: write '
        '`distill_losses` in a config with an FPN/neck feature mimic term, '
        "e.g. `loss_mimic=dict(student='neck', teacher='neck', connector="
        "dict(type='FPNAdapter', ...), loss=dict(type='MimicLoss'))` (see "
        'configs/mmdet/_base_/fpn_mimic.py).')


def _head_class(head_type: str):
    """The registered mmdet class of a head type, or None."""
    try:
        import mmdet.models  # noqa: F401  (registers the heads)
        from mmdet.registry import MODELS as DET_MODELS
    except ImportError:
        return None
    return DET_MODELS.get(head_type)


def dense_cls_tap(head: dict) -> Optional[tuple]:
    """``(attribute, use_sigmoid)`` of a dense head config, or None.

    The attribute comes from :data:`DENSE_CLS_TAPS` by the head's class
    (its bases included); sigmoid or softmax as the head's ``loss_cls``
    (its ``use_sigmoid``, or the head's default loss) says.
    """
    cls = _head_class(_type_name(head))
    if cls is None:
        return None
    attribute = next(
        (DENSE_CLS_TAPS[base.__name__]
         for base in cls.__mro__ if base.__name__ in DENSE_CLS_TAPS), None)
    if attribute is None:
        return None
    loss = head.get('loss_cls')
    if loss is None:
        default = inspect.signature(cls.__init__).parameters.get('loss_cls')
        loss = getattr(default, 'default', None) or {}
    return attribute, bool(loss.get('use_sigmoid', False))


def _dense(student: dict, teacher: dict) -> dict:
    s_head, t_head = student.get('bbox_head', {}), teacher.get('bbox_head', {})
    s_tap, t_tap = dense_cls_tap(s_head), dense_cls_tap(t_head)
    if s_tap is None or t_tap is None:
        side, head = ('student', s_head) if s_tap is None else ('teacher',
                                                                t_head)
        raise ValueError(
            f'`--distill dense` should be given detectors with a dense head '
            f'of {sorted(DENSE_CLS_TAPS)} (or a subclass), but the {side} '
            f'has {_type_name(head)!r}; write `distill_losses` in a config '
            'with the taps of its class maps.')
    if s_tap[1] != t_tap[1]:
        raise ValueError(
            '`bbox_head.loss_cls.use_sigmoid` should be the same for student '
            f'and teacher, but got {s_tap[1]} and {t_tap[1]}: one scores '
            'classes independently, the other as a softmax; their class '
            'maps do not mean the same.')
    terms = recipe_terms('mmdet/_base_/dist_retinanet.py')
    term = terms['distill_losses']['loss_dist']
    term['student'] = f'bbox_head.{s_tap[0]}'
    term['teacher'] = f'bbox_head.{t_tap[0]}'
    term['loss']['use_sigmoid'] = s_tap[1]
    return terms


# Each preset's taps and weights are those of a `_base_` fragment the
# configs inherit too (one source per recipe); the functions only adapt
# what depends on the student and teacher at hand.
_retinanet = _from('mmdet/_base_/dist_retinanet.py')
PRESETS: Dict[str, Callable[[dict, dict], dict]] = {
    'cls': _from('mmpretrain/_base_/dist_logits.py'),
    'kd': _from('mmpretrain/_base_/kd_logits.py'),
    'retinanet': _retinanet,
    'retinanet+mimic': _with_mimic(_retinanet),
    'dense': _dense,
    'dense+mimic': _with_mimic(_dense),
    'two-stage': _two_stage,
    'two-stage+mimic': _with_mimic(_two_stage),
    'seg': _seg,
}
# The fragment whose `teacher_gate` a preset's runs get.
_GATES = {
    'cls': 'mmpretrain/_base_/dist_logits.py',
    'kd': 'mmpretrain/_base_/dist_logits.py',
    'retinanet': 'mmdet/_base_/dist_retinanet.py',
    'dense': 'mmdet/_base_/dist_retinanet.py',
    'two-stage': 'mmdet/_base_/dist_two_stage.py',
    'seg': 'mmseg/_base_/dist_heads.py',
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
    """The preset for a student model, e.g. ``RetinaNet`` -> retinanet.

    A single-stage detector whose dense head is in :data:`DENSE_CLS_TAPS`
    (FCOS, ATSS, GFL, RTMDet, YOLOX, ...) gets ``dense``; a query-based
    model is refused with what to write instead.
    """
    refuse_query_family(student)
    kind = _type_name(student)
    if kind in _AUTO:
        return _AUTO[kind]
    head = student.get('bbox_head')
    if isinstance(head, dict) and 'roi_head' not in student and \
            dense_cls_tap(head) is not None:
        return 'dense'
    raise ValueError(
        f'`--distill` should be given for a {kind!r} student (no preset '
        f'is known for it); pick one of {sorted(PRESETS)} or write '
        '`distill_losses` in a config.')


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
    refuse_query_family(student)
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
    # The teacher gate of the preset's recipe (see its fragment): checked
    # before the first step, tunable as `default_hooks.teacher_gate.*`.
    gate = _load_fragment(_GATES[preset.split('+')[0]])['teacher_gate']
    cfg.default_hooks = cfg.get('default_hooks') or ConfigDict()
    cfg.default_hooks.setdefault('teacher_gate', ConfigDict(gate))
    imports = cfg.get('custom_imports', {}).get('imports', [])
    if 'distkd_mm' not in imports:
        cfg.custom_imports = dict(
            imports=list(imports) + ['distkd_mm'], allow_failed_imports=False)
    return cfg


def load_config(path: str) -> Config:
    """A config file, or ``'pkg::path'`` from an installed library.

    Args:
        path: The config the user passed (the student on the command line).

    Returns:
        The loaded config. A URL, or a ``pkg::`` name that leaves the
        package's configs, is refused before anything runs (the same check
        as a teacher's: :func:`~distkd_mm.utils.config_paths.
        resolve_config_path`).
    """
    return Config.fromfile(resolve_config_path(path, 'config'))
