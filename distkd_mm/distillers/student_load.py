"""A checkpoint loads into what it says, whichever way MMEngine loads it.

MMEngine's ``load_from`` loads non-strictly: a plain student checkpoint
(the usual way to start a distillation from a baseline) given to a
Distiller matches no key (they sit under ``student.``), logs warnings and
trains from random init with exit code 0. A ``resume`` into a changed model
loads what fits, re-randomises the rest and writes the next checkpoint.
The pre-hook below runs inside ``Distiller.load_state_dict`` (MMEngine's
loader calls it before any tensor is copied, and before a resume restores
optimizer or counters), so both are fixed or refused before anything is
written.
"""
import logging

from mmengine.logging import print_log
from torch import nn

from ..utils.checkpoint import is_resuming
from ..utils.student_layout import (STUDENT_PREFIX, is_distiller_state,
                                    student_state)
from ..utils.weights import MIN_LOADED_SHARE, count_fit, state_differences


def fit_checkpoint(module: nn.Module, state_dict: dict, prefix: str, *args,
                   **kwargs) -> None:
    """Load-state-dict pre-hook of the Distiller (edits ``state_dict``).

    Resume: any difference from the model is refused, naming the first
    ones. ``load_from``: a plain student checkpoint gets the ``student.``
    prefix; either layout must fill at least half of the student's float
    tensors (key and shape); the counts of a plain one are logged once.

    Raises:
        RuntimeError: a resume whose checkpoint differs from the model, or
            a plain checkpoint that fits less than half of the student.
    """
    own = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if is_resuming():
        diffs = state_differences(own, module.state_dict())
        if diffs:
            raise RuntimeError(
                '`resume` should continue the model that wrote the '
                f'checkpoint, but got {len(diffs)} differences: '
                f'{"; ".join(diffs[:5])}. Nothing was loaded or written. '
                'Resume with the config of that run, or start this model '
                'in its own `--work-dir` (with `load_from=CHECKPOINT` to '
                'start from its weights).')
        return
    distiller = is_distiller_state(own)
    layout = 'Distiller' if distiller else 'plain'
    saved = student_state(own) if distiller else own
    student = module.student.state_dict()
    fitting, total = count_fit(saved, student)
    counts = (f'{fitting} of {total} student float tensors fit the {layout} '
              'checkpoint (same key and shape)')
    if fitting < MIN_LOADED_SHARE * total:
        raise RuntimeError(
            '`load_from` should be a checkpoint of the student (or of a '
            f'Distiller), but got one that fits too little: {counts}, fewer '
            f'than {MIN_LOADED_SHARE:.0%}; first model keys '
            f'{sorted(student)[:3]} vs checkpoint {sorted(saved)[:3]}. Check '
            'that `model.student` and the checkpoint belong together, or '
            'convert its keys (see tools/).')
    if distiller:
        return  # a Distiller checkpoint: MMEngine's load as before
    print_log(
        f'load_from: a plain student checkpoint, loaded into the '
        f'Distiller\'s student: {counts}.',
        logger='current',
        level=logging.INFO if fitting == total else logging.WARNING)
    to_student = prefix + STUDENT_PREFIX
    for key in list(own):
        state_dict[to_student + key] = state_dict.pop(prefix + key)
