"""Build-time checks that a term's two taps can line up.

Run when the Distiller is built, before the Runner builds datasets and
dataloaders: a mismatch found here costs nothing, the same mismatch found at
the first step costs the data loading (minutes for COCO) first.
"""
from typing import Iterator, Mapping, Optional, Tuple

from torch import nn

from .recorder import get_submodule

# Heads that return a tuple of logits, and their branches: a tap on the
# whole head pairs only with a head of the same kind.
TUPLE_HEADS = {'ConformerHead': ('conv_cls_head', 'trans_cls_head')}


def tap_class_count(model: nn.Module, path: str) -> Optional[Tuple[int, str]]:
    """``(num_classes, owner path)`` of the head a tap belongs to.

    The tapped module itself or its nearest enclosing module that has an
    integer ``num_classes`` (mmpretrain, mmdet and mmseg heads all do);
    None for taps outside a head (a neck, a backbone stage).
    """
    parts = path.split('.') if path else []
    for end in range(len(parts), 0, -1):
        owner = '.'.join(parts[:end])
        count = getattr(
            get_submodule(model, owner, 'model'), 'num_classes', None)
        if isinstance(count, int) and not isinstance(count, bool):
            return count, owner
    return None


def check_class_counts(student: nn.Module, teacher: nn.Module,
                       terms: Mapping) -> None:
    """Fail when a term pairs heads with different numbers of classes.

    Args:
        student: The student model.
        teacher: The teacher model.
        terms: Term name -> :class:`~.term.DistillTerm`.

    Raises:
        ValueError: Naming the term, both heads and both class counts.
    """
    for name, term in terms.items():
        s = tap_class_count(student, term.student_tap)
        t = tap_class_count(teacher, term.teacher_tap)
        if s is None or t is None or s[0] == t[0]:
            continue
        raise ValueError(
            f'`{name}` should pair heads with the same classes, but the '
            f'student\'s `{s[1]}` has num_classes={s[0]} and the teacher\'s '
            f'`{t[1]}` has num_classes={t[0]}: class i of one is not class '
            'i of the other. Use a teacher trained on the student\'s '
            'classes (same set, same order), or set the student\'s '
            '`num_classes` to the dataset\'s if it is the one that is '
            'wrong.')


def _sides(student: nn.Module, teacher: nn.Module,
           term) -> Iterator[Tuple[str, nn.Module, str]]:
    """``(side, model, tap)`` of a term's student and teacher."""
    yield 'student', student, term.student_tap
    yield 'teacher', teacher, term.teacher_tap


def _anchors_per_location(model: nn.Module, path: str) -> Tuple[int, str]:
    """Priors per location of the dense head a tap belongs to (1 when none
    is known): mmdet's anchor heads predict ``num_base_priors`` x classes
    channels at every location."""
    found = tap_class_count(model, path)
    if found is None:
        return 1, path
    owner = get_submodule(model, found[1], 'model')
    priors = getattr(owner, 'num_base_priors', 1)
    return (priors if isinstance(priors, int) else 1), found[1]


def check_softmax_over_anchors(student: nn.Module, teacher: nn.Module,
                               terms: Mapping) -> None:
    """Fail when a softmax term would treat several anchors' classes as
    one distribution.

    A softmax dense head with A anchors per location has A x (C + 1)
    channels, one softmax per anchor; a loss that takes the channel axis as
    the classes would mix the A distributions, silently.

    Raises:
        ValueError: Naming the term, the head and its anchors.
    """
    for name, term in terms.items():
        loss = term.loss
        if getattr(loss, 'use_sigmoid', False) or getattr(
                loss, 'class_dim', None) is not None:
            continue
        for side, model, tap in _sides(student, teacher, term):
            priors, owner = _anchors_per_location(model, tap)
            if priors > 1:
                raise ValueError(
                    f'`{name}` should take a softmax over one anchor\'s '
                    f'classes, but the {side}\'s `{owner}` predicts '
                    f'{priors} anchors per location, so the channels of '
                    f'`{tap}` hold {priors} softmax distributions side by '
                    'side. Use a sigmoid head and `use_sigmoid=True` (as '
                    'the seed\'s RetinaNet), or a head with one prior per '
                    'location.')


def check_tuple_heads(student: nn.Module, teacher: nn.Module,
                      terms: Mapping) -> None:
    """Fail when a term pairs a head that returns a tuple of logits (e.g.
    Conformer's two branches) with one that returns a single tensor.

    Raises:
        ValueError: Naming the term, the head and the branch taps to use.
    """
    for name, term in terms.items():
        kinds = {}
        for side, model, tap in _sides(student, teacher, term):
            head = type(get_submodule(model, tap, side)).__name__
            kinds[side] = (tap, head, TUPLE_HEADS.get(head))
        if (kinds['student'][2] is None) == (kinds['teacher'][2] is None):
            continue
        side = 'student' if kinds['student'][2] else 'teacher'
        tap, head, branches = kinds[side]
        raise ValueError(
            f'`{name}` should pair taps with outputs alike, but the '
            f'{side}\'s `{tap}` ({head}) returns a tuple of logits '
            f'{branches} and the other tap one tensor. Tap one branch: '
            f'`model.distill_losses.{name}.{side}={tap}.{branches[-1]}` '
            f'(or `{tap}.{branches[0]}`), or pair it with a {head}.')


def check_alignment(student: nn.Module, teacher: nn.Module,
                    terms: Mapping) -> None:
    """Every build-time check of this module, for each term."""
    for check in (check_class_counts, check_softmax_over_anchors,
                  check_tuple_heads):
        check(student, teacher, terms)
