"""Write the student of a Distiller checkpoint as a plain model checkpoint.

The result loads into the student's own config with ``load_from`` (strict)
and evaluates with tools/test.py, with no trace of distillation in it:
connectors and the optimizer state are dropped. The input is never
overwritten, and the output appears only complete (written to a temporary
file in the same folder, flushed, then renamed).
"""
import argparse
import os
import os.path as osp
import tempfile
from collections import OrderedDict

import torch

import distkd_mm  # noqa: F401  (safe loading of MMEngine checkpoints)
from distkd_mm.utils import load_untrusted


def student_checkpoint(checkpoint: dict) -> dict:
    """The ``student.*`` weights of ``checkpoint``, prefix removed."""
    state = checkpoint.get('state_dict', checkpoint)
    student = OrderedDict((k[len('student.'):], v) for k, v in state.items()
                          if k.startswith('student.'))
    if not student:
        raise ValueError('`checkpoint` should come from a Distiller run '
                         '(keys starting with "student."), but it has none; '
                         'it may already be a plain model checkpoint.')
    meta = dict(checkpoint.get('meta', {}))
    meta['exported_from'] = 'distkd_mm Distiller'
    return dict(meta=meta, state_dict=student)


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
    """``torch.save`` to a temporary file, then rename it over ``out``.

    A full disk or a killed process leaves ``out`` as it was (absent or
    the previous file), never half written.
    """
    folder = osp.dirname(osp.abspath(out))
    # A SIGKILLed export cannot clean up after itself: its temporary file
    # would stay beside ``out`` forever (the name is this function's own).
    stale = osp.basename(out) + '.'
    for name in os.listdir(folder):
        if name.startswith(stale) and name.endswith('.partial'):
            os.remove(osp.join(folder, name))
    fd, tmp = tempfile.mkstemp(
        prefix=osp.basename(out) + '.', suffix='.partial', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('checkpoint', help='a Distiller checkpoint')
    parser.add_argument('out', help='where to write the student checkpoint')
    args = parser.parse_args()
    check_paths(args.checkpoint, args.out)
    exported = student_checkpoint(load_untrusted(args.checkpoint))
    save_atomically(exported, args.out)
    print(f'Wrote {len(exported["state_dict"])} student tensors to '
          f'{args.out}')


if __name__ == '__main__':
    main()
