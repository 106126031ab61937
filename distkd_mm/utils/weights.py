"""Load a checkpoint's weights into a model and say how well they fit."""
import logging
from typing import Callable, List, Optional

from mmengine.logging import print_log
from torch import nn

from .checkpoint import extract_state_dict, load_untrusted

# With strict=False, fewer loaded tensors than this share of the model's
# means the checkpoint belongs to another model (or needs a converter).
MIN_LOADED_SHARE = 0.5


def load_weights(model: nn.Module,
                 filename: str,
                 strict: bool = True,
                 name: str = 'model',
                 converter: Optional[Callable] = None) -> None:
    """Load ``filename`` into ``model``; count and list what does not fit.

    Strict by default: a teacher that silently keeps random weights in some
    layers is the most common way distillation fails without an error.
    ``strict=False`` allows a partial load but still fails when less than
    half of the model's tensors were loaded (a checkpoint of another model,
    or keys with another prefix), and always logs the counts through
    MMEngine's logger. ``converter`` maps the file's state dict to the
    model's key layout first (see :mod:`distkd_mm.utils.convert`).
    """
    state_dict = extract_state_dict(load_untrusted(filename))
    if converter is not None:
        state_dict = converter(state_dict)
    total = len(model.state_dict())
    result = model.load_state_dict(state_dict, strict=False)
    missing, unexpected = result.missing_keys, result.unexpected_keys
    loaded = total - len(missing)
    counts = (f'{loaded} of {total} {name} tensors loaded from {filename!r}; '
              f'missing keys ({len(missing)}): {_short(missing)}; '
              f'unexpected keys ({len(unexpected)}): {_short(unexpected)}')
    level = logging.WARNING if missing or unexpected else logging.INFO
    print_log(counts, logger='current', level=level)
    if strict and (missing or unexpected):
        raise RuntimeError(
            f'The {name} checkpoint {filename!r} does not match the {name} '
            f'model.\n  missing keys ({len(missing)}): {_short(missing)}\n'
            f'  unexpected keys ({len(unexpected)}): {_short(unexpected)}\n'
            f'Check that the config and checkpoint belong together, convert '
            f'the keys (see tools/), or pass strict=False to load anyway.')
    if loaded < MIN_LOADED_SHARE * total:
        raise RuntimeError(
            f'The {name} checkpoint {filename!r} matched almost nothing of '
            f'the {name} model: {counts}. Even with strict=False at least '
            f'{MIN_LOADED_SHARE:.0%} of the tensors must load, or the '
            f'{name} would keep random weights. Check that the config and '
            'checkpoint belong together, or convert the keys (see tools/).')


def _short(keys: List[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)'
                    if len(keys) > limit else '') if keys else '-'
