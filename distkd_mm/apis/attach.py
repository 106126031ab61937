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
# attribute to tap, by head class (a subclass inherits its nearest listed
# base's entry; a subclass that builds other layers has its own entry).
# A shared conv runs once per level; a ModuleList (RTMDet's separate-BN
# head, YOLOX) is tapped member by member (see Recorder): either way the
# k-th call of the student pairs with the k-th of the teacher.
DENSE_CLS_TAPS: Dict[str, str] = {
    'RetinaHead': 'retina_cls',  # also FSAF, FreeAnchor, PISA
    'RetinaSepBNHead': 'retina_cls',  # per-level convs, a shared classifier
    'SABLRetinaHead': 'retina_cls',
    'ATSSHead': 'atss_cls',  # also PAA
    'DDODHead': 'atss_cls',
    'GFLHead': 'gfl_cls',  # also LD
    'VFNetHead': 'vfnet_cls',
    'TOODHead': 'tood_cls',  # the logits before the task alignment
    'AnchorFreeHead': 'conv_cls',  # FCOS, FoveaBox, AutoAssign, NAS-FCOS...
    'RepPointsHead': 'reppoints_cls_out',
    'CenterNetHead': 'heatmap_head',  # one level: the class heatmap logits
    'YOLOFHead': 'cls_score',  # one level, before the implicit objectness
    'RTMDetHead': 'rtm_cls',  # RTMDetSepBNHead: a ModuleList
    'YOLOXHead': 'multi_level_conv_cls',  # a ModuleList
}
# Heads whose classification loss is not their `loss_cls`.
DENSE_CLS_LOSSES: Dict[str, str] = {'CenterNetHead': 'loss_center_heatmap'}
# Losses that score sigmoid probabilities without a `use_sigmoid` switch.
SIGMOID_LOSSES = ('GaussianFocalLoss', )

# Dense heads whose class maps do not line up, and why (by head class, its
# subclasses included).
DENSE_REFUSED: Dict[str, str] = {
    'SSDHead': ('its class maps hold num_anchors x (num_classes + 1) '
                'channels scored by one softmax per anchor, so DIST over the '
                'channel axis would mix the anchors\' softmaxes'),
    'YOLOV3Head': ('one conv per level predicts boxes, objectness and '
                   'classes of every anchor in one map, so its output is '
                   'no class map'),
    'GuidedAnchorHead': ('in eval mode (the teacher\'s) its classifier is a '
                         'masked convolution computed only where anchors '
                         'are guided, one image at a time, so the teacher\'s '
                         'class maps are not computed where the student\'s '
                         'are'),
}

# Families whose class logits belong to queries: a query's index says
# nothing about which object it finds (queries are matched to objects by
# Hungarian assignment in every forward), so student query i and teacher
# query i are not the same object and their logits do not line up.
# By model or head class, their subclasses included (DDQ-DETR, Grounding
# DINO, QueryInst...). Sparse R-CNN's learned proposals are queries too.
QUERY_DETECTORS = ('DetectionTransformer', 'DETR', 'DeformableDETR',
                   'ConditionalDETR', 'DABDETR', 'DINO', 'MaskFormer',
                   'Mask2Former', 'SparseRCNN')
QUERY_HEADS = ('DETRHead', 'MaskFormerHead', 'Mask2FormerHead')
# Single-stage instance segmentors run their box head's loss (with the
# targets) in `tensor` mode, to pick the mask head's positives.
INSTANCE_SEGMENTORS = ('SingleStageInstanceSegmentor', )


def _type_name(cfg: Optional[dict]) -> str:
    return str((cfg or {}).get('type', '')).split('.')[-1]


def _is_a(cfg: dict, names: tuple) -> bool:
    """Whether the mmdet class of ``cfg``'s type (or, unregistered there,
    the type's name) is one of ``names`` or a subclass of one."""
    kind = _type_name(cfg)
    cls = _head_class(kind)
    bases = [b.__name__ for b in cls.__mro__] if cls is not None else [kind]
    return any(name in names for name in bases)


def query_family(student: dict) -> Optional[str]:
    """The query-based model type (or head type) of ``student``, if any."""
    if _is_a(student, QUERY_DETECTORS):
        return _type_name(student)
    for key in ('decode_head', 'panoptic_head', 'bbox_head'):
        head = student.get(key)
        if isinstance(head, dict) and (_is_a(head, QUERY_HEADS)
                                       or 'DETR' in _type_name(head)):
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
    """The registered mmdet class of a model or head type, or None."""
    try:
        import mmdet.models  # noqa: F401  (registers the heads)
        from mmdet.registry import MODELS as DET_MODELS
    except ImportError:
        return None
    return DET_MODELS.get(head_type)


def _listed(cls, table: Dict[str, str]) -> Optional[str]:
    """The entry of ``table`` for ``cls`` or its nearest listed base."""
    return next((table[base.__name__]
                 for base in cls.__mro__ if base.__name__ in table), None)


def dense_refusal(head: dict) -> Optional[str]:
    """Why a dense head's class maps do not line up, if they do not."""
    cls = _head_class(_type_name(head))
    return None if cls is None else _listed(cls, DENSE_REFUSED)


def _default_arg(cls, name: str):
    """The default of ``name`` in the first ``__init__`` of ``cls``'s
    bases that declares it (a head may pass it on through ``**kwargs``)."""
    for base in cls.__mro__:
        init = base.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not param.empty:
            return param.default
    return None


def _uses_sigmoid(loss: dict) -> bool:
    """Whether a classification loss config scores by sigmoid: its
    ``use_sigmoid``, else its class's default, else by its type."""
    if 'use_sigmoid' in loss:
        return bool(loss['use_sigmoid'])
    try:
        from mmdet.registry import MODELS as DET_MODELS
        loss_cls = DET_MODELS.get(_type_name(loss))
    except ImportError:
        loss_cls = None
    default = None if loss_cls is None else _default_arg(
        loss_cls, 'use_sigmoid')
    if default is not None:
        return bool(default)
    return _type_name(loss) in SIGMOID_LOSSES


def dense_cls_tap(head: dict) -> Optional[tuple]:
    """``(attribute, use_sigmoid)`` of a dense head config, or None.

    The attribute comes from :data:`DENSE_CLS_TAPS` by the head's class
    (its bases included); sigmoid or softmax as the head's classification
    loss says (its ``use_sigmoid``, or the default of the loss class, or
    of the head's ``loss_cls`` argument).
    """
    cls = _head_class(_type_name(head))
    if cls is None or _listed(cls, DENSE_REFUSED) is not None:
        return None
    attribute = _listed(cls, DENSE_CLS_TAPS)
    if attribute is None:
        return None
    key = _listed(cls, DENSE_CLS_LOSSES) or 'loss_cls'
    loss = head.get(key)
    if loss is None:
        loss = _default_arg(cls, key) or {}
    return attribute, _uses_sigmoid(loss)


def _refuse_dense(side: str, head: dict) -> None:
    """Fail for a dense head whose class maps do not line up (or that
    the table does not know), saying why and what to write."""
    kind = _type_name(head)
    reason = dense_refusal(head)
    why = (f'its class maps do not line up between two models: {reason}'
           if reason is not None else
           f'its class-map attribute is not known (heads known: '
           f'{sorted(DENSE_CLS_TAPS)}, and their subclasses)')
    raise ValueError(
        f'`--distill dense` should be given detectors whose dense heads\' '
        f'class maps line up, but the {side} has a {kind}: {why}. Write '
        '`distill_losses` in a config instead, with taps on outputs that '
        'do (e.g. the FPN features: configs/mmdet/_base_/fpn_mimic.py).')


def _dense(student: dict, teacher: dict) -> dict:
    for side, model in (('student', student), ('teacher', teacher)):
        if _is_a(model, INSTANCE_SEGMENTORS):
            raise ValueError(
                f'`--distill dense` should be given detectors, but the '
                f'{side} is a {_type_name(model)}: its `tensor` forward runs '
                'the box head\'s loss with the targets to pick the mask '
                'head\'s positives, so the teacher would compute losses and '
                'run its class maps twice a step. Write `distill_losses` in '
                'a config with a `teacher_forward` that runs the teacher\'s '
                'backbone, neck and `bbox_head.forward` only.')
    s_head, t_head = student.get('bbox_head', {}), teacher.get('bbox_head', {})
    s_tap, t_tap = dense_cls_tap(s_head), dense_cls_tap(t_head)
    if s_tap is None:
        _refuse_dense('student', s_head)
    if t_tap is None:
        _refuse_dense('teacher', t_head)
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


def _is_retina_head(head: dict) -> bool:
    """Whether a head config is mmdet's RetinaHead (or a subclass); an
    unregistered head is taken to be one, as a RetinaNet's default."""
    return _head_class(_type_name(head)) is None or _is_a(
        head, ('RetinaHead', ))


def guess_preset(student: dict) -> str:
    """The preset for a student model, e.g. ``RetinaNet`` -> retinanet.

    A single-stage detector whose dense head is in :data:`DENSE_CLS_TAPS`
    (FCOS, ATSS, GFL, RTMDet, YOLOX, ...) gets ``dense``; a query-based
    model, and a dense head whose class maps do not line up
    (:data:`DENSE_REFUSED`: SSD, YOLOv3, Guided Anchoring), are refused
    saying why and what to write instead.
    """
    refuse_query_family(student)
    kind = _type_name(student)
    head = student.get('bbox_head')
    dense = isinstance(head, dict) and 'roi_head' not in student
    if kind == 'RetinaNet' and dense and not _is_retina_head(head):
        # SABL, Guided Anchoring...: RetinaNets with other heads.
        kind = 'SingleStageDetector'
    if kind in _AUTO:
        return _AUTO[kind]
    if dense and dense_cls_tap(head) is not None:
        return 'dense'
    if dense and _head_class(_type_name(head)) is not None:
        _refuse_dense('student', head)
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
