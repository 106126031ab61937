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
    # The auxiliary heads' term only when both models have one.
    if not (student.get('auxiliary_head') and teacher.get('auxiliary_head')):
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


# Each preset's taps and weights are those of a `_base_` fragment the
# configs inherit too (one source per recipe); the functions only adapt
# what depends on the student and teacher at hand.
_retinanet = _from('mmdet/_base_/dist_retinanet.py')
PRESETS: Dict[str, Callable[[dict, dict], dict]] = {
    'cls': _from('mmpretrain/_base_/dist_logits.py'),
    'kd': _from('mmpretrain/_base_/kd_logits.py'),
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
