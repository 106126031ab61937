"""Write the student of a Distiller checkpoint as a plain model checkpoint.

The result loads into the student's own config with ``load_from`` (strict)
and evaluates with tools/test.py, with no trace of distillation in it:
connectors and the optimizer state are dropped.
"""
import argparse
from collections import OrderedDict

import torch

import distkd_mm  # noqa: F401  (safe loading of MMEngine checkpoints)
from distkd_mm.utils.checkpoint import load_untrusted


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('checkpoint', help='a Distiller checkpoint')
    parser.add_argument('out', help='where to write the student checkpoint')
    args = parser.parse_args()
    exported = student_checkpoint(load_untrusted(args.checkpoint))
    torch.save(exported, args.out)
    print(f'Wrote {len(exported["state_dict"])} student tensors to '
          f'{args.out}')


if __name__ == '__main__':
    main()
