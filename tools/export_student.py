"""Write the student of a Distiller checkpoint as a plain model checkpoint.

The result loads into the student's own config with ``load_from`` (strict)
and evaluates with tools/test.py, with no trace of distillation in it:
connectors and the optimizer state are dropped. Of a run with an EMA of
the student it holds the averaged weights (the ones validation scored);
``--raw`` takes the trained ones. The input is never overwritten, and the
output appears only complete (:func:`distkd_mm.utils.atomic.atomic_write`).
"""
import argparse
import os.path as osp

import torch

import distkd_mm  # noqa: F401  (safe loading of MMEngine checkpoints)
from distkd_mm.utils import load_untrusted
from distkd_mm.utils.atomic import atomic_write, remove_stale_temps
from distkd_mm.utils.student_layout import (DISTILLER_EMA, checkpoint_layout,
                                            export_student)


def check_paths(src: str, out: str) -> None:
    """Refuse to write over the input (its optimizer state would be lost)."""
    same = osp.realpath(src) == osp.realpath(out) or (osp.exists(out) and
                                                      osp.samefile(src, out))
    if same:
        raise ValueError(
            f'`out` should differ from the input checkpoint, but both are '
            f'{src!r}; overwriting it would lose the distiller state and '
            'optimizer. Give another output path, e.g. student.pth.')


def save_atomically(obj: dict, out: str) -> None:
    """``torch.save`` ``obj`` to ``out``, complete or not at all.

    A full disk or a killed process leaves ``out`` as it was (absent or
    the previous file), never half written.
    """
    # A SIGKILLed export cannot remove its temporary file; one export
    # writes `out` at a time, so any temporary file of it is left over.
    remove_stale_temps(osp.dirname(osp.abspath(out)), osp.basename(out))
    with atomic_write(out) as f:
        torch.save(obj, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('checkpoint', help='a Distiller checkpoint')
    parser.add_argument('out', help='where to write the student checkpoint')
    parser.add_argument(
        '--raw',
        action='store_true',
        help='of a run with an EMA of the student: the trained weights, '
        'not the averaged ones')
    args = parser.parse_args()
    check_paths(args.checkpoint, args.out)
    checkpoint = load_untrusted(args.checkpoint)
    exported = export_student(checkpoint, ema=not args.raw)
    save_atomically(exported, args.out)
    which = ''
    if checkpoint_layout(checkpoint) == DISTILLER_EMA:
        which = ' (raw)' if args.raw else ' (EMA)'
    print(f'Wrote {len(exported["state_dict"])} student tensors{which} to '
          f'{args.out}')


if __name__ == '__main__':
    main()
