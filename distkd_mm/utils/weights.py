"""Load a checkpoint's weights into a model and say how well they fit."""
import logging
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from .checkpoint import extract_state_dict, load_untrusted
from .urls import redact_url

# With strict=False, fewer loaded tensors than this share of the model's
# means the checkpoint belongs to another model (or needs a converter).
MIN_LOADED_SHARE = 0.5


def load_weights(model: nn.Module,
                 filename: str,
                 strict: bool = True,
                 name: str = 'model',
                 converter: Optional[Callable] = None,
                 config: Optional[str] = None) -> None:
    """Load ``filename`` into ``model``; count and list what does not fit.

    Strict by default: a teacher that silently keeps random weights in some
    layers is the most common way distillation fails without an error.
    ``strict=False`` allows a partial load but still fails when less than
    half of the model's tensors were loaded (a checkpoint of another model,
    or keys with another prefix), and always logs the counts through
    MMEngine's logger. ``converter`` maps the file's state dict to the
    model's key layout first (see :mod:`distkd_mm.utils.convert`).
    ``config``: where the model came from, named when shapes differ.
    """
    state_dict = extract_state_dict(load_untrusted(filename))
    source = redact_url(filename)  # a signed URL's token stays out
    if converter is not None:
        state_dict = converter(state_dict)
    # Counted before loading: the fit rule compares the file's shapes with
    # the model's, which load_state_dict would overwrite.
    model_state = model.state_dict()
    loaded, total = count_fit(state_dict, model_state)
    mismatched = [(k, tuple(v.shape), tuple(model_state[k].shape))
                  for k, v in state_dict.items()
                  if k in model_state and isinstance(v, torch.Tensor)
                  and tuple(v.shape) != tuple(model_state[k].shape)]
    if mismatched:
        # torch's own error ("size mismatch ... ImageClassifier") names
        # neither the file nor which model it was meant for.
        shown = '; '.join(f'{k}: file {a} vs {name} {b}'
                          for k, a, b in mismatched[:5])
        model_desc = type(model).__name__
        if config:
            model_desc += f' from {redact_url(config)!r}'
        if strict:
            raise RuntimeError(
                f'The {name} checkpoint {source!r} should have the shapes '
                f'of the {name} model ({model_desc}), but got '
                f'{len(mismatched)} tensors '
                f'of other shapes: {shown}. Use the checkpoint that belongs '
                f'to the {name} config (e.g. one trained with the same '
                'number of classes), or change the config to match it.')
        # Non-strict: leave them out, as missing (the fit count says so).
        state_dict = {
            k: v
            for k, v in state_dict.items()
            if k not in {m[0]
                         for m in mismatched}
        }
    result = model.load_state_dict(state_dict, strict=False)
    missing, unexpected = result.missing_keys, result.unexpected_keys
    counts = (
        f'{loaded} of {total} {name} float tensors loaded from {source!r}; '
        f'missing keys ({len(missing)}): {_short(missing)}; '
        f'unexpected keys ({len(unexpected)}): {_short(unexpected)}')
    level = logging.WARNING if missing or unexpected else logging.INFO
    print_log(counts, logger='current', level=level)
    if strict and (missing or unexpected):
        raise RuntimeError(
            f'The {name} checkpoint {source!r} does not match the {name} '
            f'model.\n  missing keys ({len(missing)}): {_short(missing)}\n'
            f'  unexpected keys ({len(unexpected)}): {_short(unexpected)}\n'
            f'Check that the config and checkpoint belong together, convert '
            f'the keys (see tools/), or pass strict=False to load anyway.')
    if loaded < MIN_LOADED_SHARE * total:
        raise RuntimeError(
            f'The {name} checkpoint {source!r} matched almost nothing of '
            f'the {name} model: {counts}. Even with strict=False at least '
            f'{MIN_LOADED_SHARE:.0%} of the tensors must load, or the '
            f'{name} would keep random weights. Check that the config and '
            'checkpoint belong together, or convert the keys (see tools/).')


def _is_weight(value) -> bool:
    """Float tensors only: integer buffers (BatchNorm's
    ``num_batches_tracked``) exist in every BN layer of any model, so
    counting them would let a file of another model pass as a fit."""
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def count_fit(state_dict: Dict, model_state: Dict) -> Tuple[int, int]:
    """The fit rule: how many of the model's weights ``state_dict`` fills.

    A model tensor counts as filled only when ``state_dict`` has a tensor of
    the same key AND shape (a same-named tensor of another shape is not
    loaded by anyone). Integer buffers count on neither side.

    Returns:
        tuple: ``(fitting, total)``, float tensors of ``model_state`` filled
        by ``state_dict`` and all float tensors of ``model_state``.
    """
    shapes = {
        k: tuple(v.shape)
        for k, v in model_state.items() if _is_weight(v)
    }
    fitting = sum(
        _is_weight(v) and shapes.get(k) == tuple(v.shape)
        for k, v in state_dict.items())
    return fitting, len(shapes)


def state_differences(state_dict: Dict, model_state: Dict) -> List[str]:
    """Every way ``state_dict`` differs from ``model_state``, first keys
    first: missing and unexpected keys, and tensors of other shapes.

    A resume must continue the same model; any difference means the
    checkpoint's optimizer state and counters belong to another one.
    ``_extra_state`` (run records, e.g. the teacher's source) is ignored.
    """

    def shape(v):
        return tuple(v.shape) if isinstance(v, torch.Tensor) else None

    keys = [k for k in model_state if not k.endswith('_extra_state')]
    saved = [k for k in state_dict if not k.endswith('_extra_state')]
    out = [
        f'missing {k} {shape(model_state[k])}' for k in keys
        if k not in state_dict
    ]
    out += [
        f'unexpected {k} {shape(state_dict[k])}' for k in saved
        if k not in model_state
    ]
    out += [
        f'{k}: checkpoint {shape(state_dict[k])} vs model '
        f'{shape(model_state[k])}' for k in keys
        if k in state_dict and shape(state_dict[k]) != shape(model_state[k])
    ]
    return out


def unfit_submodules(state_dict: Dict, model_state: Dict) -> List[str]:
    """Submodules (e.g. ``head.fc``) none of whose float tensors fit.

    The half rule lets a checkpoint of the same backbone with another
    number of classes pass; its head would then be scored at random. A
    whole submodule that finds no tensor of its key and shape is that case.
    """
    fits: Dict[str, List[bool]] = {}
    for key, value in model_state.items():
        if not _is_weight(value) or '.' not in key:
            continue
        saved = state_dict.get(key)
        fits.setdefault(key.rsplit('.', 1)[0], []).append(
            _is_weight(saved) and tuple(saved.shape) == tuple(value.shape))
    return [name for name, ok in fits.items() if not any(ok)]


def _short(keys: List[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)'
                    if len(keys) > limit else '') if keys else '-'
