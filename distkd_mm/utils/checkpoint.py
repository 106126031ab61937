"""Load checkpoints that may come from anywhere without running their code.

Teacher weights are usually downloaded. A pickle can carry code, so they are
loaded with ``torch.load(weights_only=True)`` and an allowlist of the few
harmless types OpenMMLab checkpoints carry besides tensors.
"""
import difflib
import hashlib
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from typing import Callable, Dict, List, Optional
from urllib.request import urlopen

import numpy as np
import torch
from torch import nn

_URL_SCHEMES = ('http://', 'https://', 'torchvision://', 'modelzoo://',
                'open-mmlab://', 'openmmlab://')
# torch.hub's convention: 'name-<sha256 prefix>.ext' pins the file content.
_HASH_IN_NAME = re.compile(r'-([a-f0-9]{6,})\.[a-z]+$')


def _safe_globals() -> List:
    """Types OpenMMLab checkpoints pickle next to tensors (meta, logs)."""
    from mmengine.logging import HistoryBuffer
    core = getattr(np, '_core', None) or np.core
    allowed = [
        HistoryBuffer, core.multiarray._reconstruct, core.multiarray.scalar,
        np.ndarray, np.dtype
    ]
    # numpy >= 1.25 pickles dtypes by their class (np.dtypes.Float64DType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return allowed


def allow_openmmlab_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

    torch >= 2.6 loads with ``weights_only=True`` by default, and MMEngine
    0.10 pickles its message hub (``HistoryBuffer`` over numpy arrays) into
    every checkpoint, so ``--resume`` fails out of the box. Allowing these
    data-only types fixes resume without ever unpickling code.

    One piece is not data: ``HistoryBuffer`` pickles its four built-in
    statistics methods as ``getattr(HistoryBuffer, 'min')``, and allowing
    ``getattr`` would let a pickle reach any attribute (and so ``os.system``).
    ``__setstate__`` re-registers those defaults anyway, so buffers are saved
    without them (custom methods are kept, and then need a trusted load).
    """
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals(_safe_globals())
    if HistoryBuffer.__getstate__ is not _history_state:
        HistoryBuffer.__getstate__ = _history_state


def _history_state(self) -> dict:
    defaults = {
        name: getattr(type(self), name)
        for name in ('min', 'max', 'current', 'mean')
    }
    custom = {
        name: method
        for name, method in self._statistics_methods.items()
        if defaults.get(name) is not method
    }
    state = {
        k: v
        for k, v in self.__dict__.items() if k != 'statistics_methods'
    }
    if custom:
        state['statistics_methods'] = custom
    return state


def install_safe_loading() -> None:
    """Route MMEngine's URL loaders through :func:`load_untrusted`.

    MMEngine loads ``http(s)://``, ``torchvision://`` and ``open-mmlab://``
    checkpoints (backbone ``init_cfg``, ``load_from``) with torch.hub's
    ``weights_only=False``; downloaded files must never run code.
    """
    from mmengine.runner import CheckpointLoader
    allow_openmmlab_checkpoints()
    CheckpointLoader.register_scheme(
        prefixes=_URL_SCHEMES, loader=_mmengine_loader, force=True)


def _mmengine_loader(filename: str, map_location=None) -> dict:
    return load_untrusted(filename, map_location or 'cpu')


def resolve(filename: str) -> str:
    """Map ``torchvision://name`` and ``open-mmlab://name`` to their URL."""
    from mmengine.runner import checkpoint as ckpt
    scheme, _, name = filename.partition('://')
    if scheme in ('torchvision', 'modelzoo'):
        urls = ckpt.get_torchvision_models()
    elif scheme in ('open-mmlab', 'openmmlab'):
        urls = ckpt.get_external_models()
        name = ckpt.get_deprecated_model_names().get(name, name)
    else:
        return filename
    if name not in urls:
        close = difflib.get_close_matches(name, list(urls), n=3)
        raise ValueError(f'`checkpoint` should name a known {scheme} model, '
                         f'but got {filename!r}. Close names: {close}.')
    url = urls[name]
    if not url.startswith(('http://', 'https://')):
        url = osp.join(ckpt._get_mmengine_home(), url)
    return url


def cache_dir() -> str:
    """Where downloaded checkpoints live: torch hub's checkpoint folder."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def download_once(url: str, directory: Optional[str] = None) -> str:
    """Download ``url`` into the cache unless it is already there.

    The file is written under a temporary name and renamed only when it is
    complete (its length matches Content-Length) and, when its name carries
    a hash (``model-1a2b3c4d.pth``, torch.hub's convention), that hash
    matches. An interrupted or corrupt download leaves nothing behind.
    """
    directory = directory or cache_dir()
    os.makedirs(directory, exist_ok=True)
    name = osp.basename(url.split('?')[0])
    path = osp.join(directory, name)
    if osp.exists(path):
        return path
    match = _HASH_IN_NAME.search(name)
    fd, partial = tempfile.mkstemp(
        prefix=name, suffix='.partial', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as out, urlopen(url, timeout=60) as resp:
            expected = resp.headers.get('Content-Length')
            digest, size = hashlib.sha256(), 0
            for chunk in iter(lambda: resp.read(1 << 20), b''):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if expected is not None and size != int(expected):
            raise RuntimeError(f'Download of {url} stopped after {size} of '
                               f'{expected} bytes; try again.')
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise RuntimeError(
                f'Downloaded {url} but its sha256 hash {digest.hexdigest()} '
                f'does not start with {match.group(1)!r}, as its name says. '
                'The file is corrupt or was replaced; nothing was kept.')
        os.replace(partial, path)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    return path


def load_untrusted(filename: str, map_location: str = 'cpu') -> dict:
    """Load a path, URL or zoo name with ``weights_only=True``.

    Accepts a local path, ``http(s)://`` (downloaded once into the cache),
    ``torchvision://name`` and ``open-mmlab://name``.

    Raises:
        RuntimeError: the file holds objects outside the allowlist (for
            instance a pickle that would execute code); nothing was run.
    """
    filename = resolve(filename)
    if filename.startswith(('http://', 'https://')):
        filename = download_once(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'`checkpoint` should be an existing file or an http(s) URL, but '
            f'got {filename!r}. Check the path.')
    try:
        allow_openmmlab_checkpoints()
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError and others
        raise RuntimeError(
            f'Refused to load {filename!r}: it contains objects that are '
            f'not plain weights, and loading it could run code. Only load '
            f'it if you trust its source, and re-save its state dict with '
            f'`torch.save(state_dict, path)`. Details: {err}') from None


def extract_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The weights of an OpenMMLab, timm/torchvision or CIFAR checkpoint."""
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and key in checkpoint:
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict):
        raise TypeError('`checkpoint` should hold a state dict, but got '
                        f'{type(checkpoint).__name__}.')
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in checkpoint.items())


def load_weights(model: nn.Module,
                 filename: str,
                 strict: bool = True,
                 name: str = 'model',
                 converter: Optional[Callable] = None) -> None:
    """Load ``filename`` into ``model``; list every key that does not fit.

    Strict by default: a teacher that silently keeps random weights in some
    layers is the most common way distillation fails without an error.
    ``converter`` maps the file's state dict to the model's key layout
    first (see :mod:`distkd_mm.utils.convert`).
    """
    state_dict = extract_state_dict(load_untrusted(filename))
    if converter is not None:
        state_dict = converter(state_dict)
    result = model.load_state_dict(state_dict, strict=False)
    missing, unexpected = result.missing_keys, result.unexpected_keys
    if strict and (missing or unexpected):
        raise RuntimeError(
            f'The {name} checkpoint {filename!r} does not match the {name} '
            f'model.\n  missing keys ({len(missing)}): {_short(missing)}\n'
            f'  unexpected keys ({len(unexpected)}): {_short(unexpected)}\n'
            f'Check that the config and checkpoint belong together, convert '
            f'the keys (see tools/), or pass strict=False to load anyway.')


def _short(keys: List[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)'
                    if len(keys) > limit else '') if keys else '-'
