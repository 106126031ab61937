"""Load checkpoints that may come from anywhere without running their code.

Every load here is ``torch.load(weights_only=True)`` with an allowlist that
is scoped to that one load (``torch.serialization.safe_globals``), never
added to the process:

- teacher weights, downloads and plain local loads (``load_from``): tensors,
  containers and numpy data only. MMEngine's log buffers inside a run's
  checkpoint become :class:`InertLogState` (plain data: nothing of them is
  ever called), since weights need tensors, not log state;
- while the Runner resumes its own work-dir checkpoint
  (:func:`resuming_own_checkpoint`): also MMEngine's ``HistoryBuffer`` and
  its four built-in statistics methods, which resume restores.

A file that fails to load is described as what it is: empty, truncated,
text, not a checkpoint; only a pickle that references code or classes
outside the allowlist gets the security refusal.
"""
import difflib
import os
import os.path as osp
import pickle
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import (_get_mmengine_home,
                                        get_deprecated_model_names,
                                        get_external_models,
                                        get_torchvision_models)

from .download import discard_cached, download_once
from .urls import redact_url

URL_SCHEMES = ('http://', 'https://', 'torchvision://', 'modelzoo://',
               'open-mmlab://', 'openmmlab://')
HISTORY_BUFFER = 'mmengine.logging.history_buffer.HistoryBuffer'
HISTORY_METHODS = ('min', 'max', 'current', 'mean')
# What the weights-only unpickler says when a pickle reaches for code.
_CODE_REFERENCES = ('Unsupported global', 'unrecognized function',
                    'Can only create new object', 'Can only build',
                    'is blocked')
_resume_depth = 0


class CorruptCheckpointError(RuntimeError):
    """The file is not a complete checkpoint (empty, truncated, text...)."""


class InertLogState:
    """An MMEngine ``HistoryBuffer`` read from an untrusted file, as data.

    Its state is kept as a dict; it has no behaviour, so a crafted state
    (say ``statistics_methods={'mean': np.dtype}``) changes nothing.
    """

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return 'InertLogState(HistoryBuffer)'


def _inert_getattr(obj: Any, name: str) -> str:
    # MMEngine pickles statistics methods as getattr(HistoryBuffer, name).
    if obj is InertLogState and isinstance(name, str):
        return f'HistoryBuffer.{name}'
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({obj!r}, {name!r}) in a weights file')


def _history_getattr(obj: Any, name: str) -> Callable:
    if obj is HistoryBuffer and name in HISTORY_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({obj!r}, {name!r}) in a checkpoint')


def data_globals() -> List:
    """numpy data types that checkpoints carry in their meta and logs."""
    core = getattr(np, '_core', None) or np.core
    allowed = [
        core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray,
        np.dtype
    ]
    # numpy >= 1.25 pickles dtypes by their class (np.dtypes.Float64DType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return allowed


def untrusted_globals() -> List:
    """Tensors, containers, numpy data; log buffers as inert data."""
    return data_globals() + [(InertLogState, HISTORY_BUFFER),
                             (_inert_getattr, 'builtins.getattr')]


def resume_globals() -> List:
    """What MMEngine's resume of its own checkpoint needs besides data."""
    return data_globals() + [(HistoryBuffer, HISTORY_BUFFER),
                             (_history_getattr, 'builtins.getattr')]


@contextmanager
def resuming_own_checkpoint() -> Iterator[None]:
    """Within this context, local loads may restore MMEngine log state."""
    global _resume_depth
    _resume_depth += 1
    try:
        yield
    finally:
        _resume_depth -= 1


def is_resuming() -> bool:
    """Whether a ``Runner.resume`` (inside :func:`resuming_own_checkpoint`)
    is loading: a resume must fit the model exactly, a ``load_from`` by
    the fit rule only."""
    return _resume_depth > 0


def load_file(path: str,
              map_location: Any = 'cpu',
              allowed: Optional[List] = None,
              fix: str = 'Re-download or re-export it.') -> Any:
    """``torch.load(weights_only=True)`` with a scoped allowlist.

    Args:
        path: A local file.
        map_location: As for ``torch.load``.
        allowed: Extra globals for this load; :func:`untrusted_globals` by
            default.
        fix: What the user should do when the file is corrupt.

    Raises:
        CorruptCheckpointError: the file is empty, truncated or not a
            checkpoint; the message says which, and its size.
        RuntimeError: the pickle references code; nothing was run.
    """
    allowed = untrusted_globals() if allowed is None else allowed
    if osp.getsize(path) == 0:
        raise CorruptCheckpointError(
            f'{path!r} is empty (0 bytes); expected a PyTorch checkpoint. '
            f'{fix}')
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(
                path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for bad files
        if any(text in str(err) for text in _CODE_REFERENCES):
            raise RuntimeError(
                f'Refused to load {path!r}: it contains objects that are '
                f'not plain weights, and loading it could run code. Only '
                f'load it if you trust its source, and re-save its state '
                f'dict with `torch.save(state_dict, path)`. Details: {err}'
            ) from None
        raise CorruptCheckpointError(
            f'{path!r} ({osp.getsize(path)} bytes) {_describe_bad(path)}; '
            'expected a complete PyTorch checkpoint (what torch.save '
            f'writes). {fix} (torch said: {_torch_reason(err)})') from None


def _torch_reason(err: Exception) -> str:
    # torch wraps unpickler errors in advice to load with
    # weights_only=False, which is wrong for a damaged file: keep the cause.
    text = str(err)
    marker = 'WeightsUnpickler error: '
    if marker in text:
        rest = text[text.index(marker) + len(marker):].strip()
        return rest.splitlines()[0]
    return text.splitlines()[0] if text else type(err).__name__


def _describe_bad(path: str) -> str:
    with open(path, 'rb') as f:
        head = f.read(64)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            return f'is a damaged zip archive ({err})'
        if bad is not None:
            return f'is a damaged zip archive (member {bad!r} fails its CRC)'
        if not any(n.endswith('data.pkl') for n in names):
            return 'is a zip archive but not a PyTorch checkpoint'
        return 'is a damaged PyTorch checkpoint'
    if head.startswith(b'PK\x03\x04'):
        return ('is truncated: it starts like a PyTorch checkpoint (a zip '
                'archive) but its end is missing')
    if head.startswith(b'\x80'):
        return 'is a truncated or damaged legacy-format checkpoint'
    # Described by kind, never quoted: the file may be anyone's.
    try:
        text = head.decode('utf-8').lstrip().lower()
    except UnicodeDecodeError:
        return 'is not a PyTorch checkpoint (binary data of another format)'
    if text.startswith(('<!doctype html', '<html', '<?xml', '<')):
        return ('is an HTML/XML page, not a checkpoint (an error or login '
                'page: check the URL and its access rights)')
    if text.startswith(('{', '[')):
        return ('is JSON text, not a checkpoint (an error reply of the '
                'server or an API: check the URL)')
    return 'is text, not a checkpoint'


def _check_complete(path: str) -> None:
    """For a download without Content-Length: does it open at all?"""
    try:
        load_file(path, fix='Nothing was kept; run again to download it.')
    except CorruptCheckpointError:
        raise
    except RuntimeError:
        pass  # complete, only refused: loading it says so again


def load_from_local_weights_only(filename: str,
                                 map_location: Any = None) -> Any:
    """MMEngine's loader for local paths (``load_from``, ``resume``).

    Restores MMEngine's log buffers only while the Runner resumes its own
    checkpoint (:func:`resuming_own_checkpoint`); otherwise they load as
    :class:`InertLogState`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if not _resume_depth:
        return load_file(filename, map_location, untrusted_globals())
    return load_file(filename, map_location, resume_globals(),
                     _previous_checkpoint_fix(filename))


def _previous_checkpoint_fix(filename: str) -> str:
    """What to resume from when ``filename`` (the latest) is damaged.

    A run killed while saving leaves its newest checkpoint truncated;
    "re-download" is no help for a file the run wrote itself, the previous
    checkpoint of the work dir is.
    """
    folder = osp.dirname(osp.abspath(filename))
    others = [
        osp.join(folder, name) for name in os.listdir(folder)
        if name.endswith('.pth')
        and not osp.samefile(osp.join(folder, name), filename)
    ]
    # A complete torch.save file is a zip archive (its directory at the
    # end): cheap to check without unpickling anything.
    good = [p for p in others if zipfile.is_zipfile(p)]
    if not good:
        return ('It is the run\'s own checkpoint, probably cut off while '
                'saving, and the work dir holds no earlier complete one: '
                'start the run again without `--resume`.')
    previous = max(good, key=osp.getmtime)
    return ('It is the run\'s own checkpoint, probably cut off while '
            f'saving; resume from the previous one: `--resume {previous}` '
            '(delete or move the damaged file so `--resume` without a path '
            'does not pick it again).')


def resolve(filename: str) -> str:
    """Map ``torchvision://name`` and ``open-mmlab://name`` to their URL."""
    scheme, _, name = filename.partition('://')
    if scheme in ('torchvision', 'modelzoo'):
        urls = get_torchvision_models()
    elif scheme in ('open-mmlab', 'openmmlab'):
        urls = get_external_models()
        name = get_deprecated_model_names().get(name, name)
    else:
        return filename
    if name not in urls:
        close = difflib.get_close_matches(name, list(urls), n=3)
        raise ValueError(f'`checkpoint` should name a known {scheme} model, '
                         f'but got {filename!r}. Close names: {close}.')
    url = urls[name]
    if not url.startswith(('http://', 'https://')):
        # A zoo file that is no URL lives in MMEngine's cache home, which
        # MMEngine (0.10) names by this private function only.
        url = osp.join(_get_mmengine_home(), url)
    return url


def load_untrusted(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a path, URL or zoo name with the tensor/numpy-only allowlist.

    Accepts a local path, ``http(s)://`` (downloaded once into the cache,
    see :mod:`distkd_mm.utils.download`), ``torchvision://name`` and
    ``open-mmlab://name``. A cached download found corrupt is removed, so
    the next run downloads it again.

    Raises:
        CorruptCheckpointError: the file is not a complete checkpoint.
        RuntimeError: the file references code; nothing was run.
    """
    filename = resolve(osp.expanduser(filename))
    if filename.startswith(('http://', 'https://')):
        path = download_once(filename, check_complete=_check_complete)
        try:
            return load_file(
                path,
                map_location,
                fix=f'It came from {redact_url(filename)}; it was '
                'removed from the cache, run again to download it again.')
        except CorruptCheckpointError:
            discard_cached(filename, path)
            raise
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'`checkpoint` should be an existing file or an http(s) URL, but '
            f'got {redact_url(filename)!r}. Check the path.')
    return load_file(filename, map_location)


def extract_state_dict(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The weights of an OpenMMLab, timm/torchvision or CIFAR checkpoint.

    EMA layouts (timm's ``state_dict_ema``, ``model_ema``) are preferred
    over the raw weights they are saved beside: they are what such a file
    was evaluated with (timm's own ``load_checkpoint(use_ema=True)``).
    The key used is logged when there was a choice or it is an EMA.
    """
    keys = ('state_dict_ema', 'model_ema', 'state_dict', 'model')
    present = [
        k for k in keys if isinstance(checkpoint, dict)
        and isinstance(checkpoint.get(k), dict)
    ]
    if present:
        if present[0].endswith('_ema') or len(present) > 1:
            print_log(
                f'checkpoint layout: using its {present[0]!r} weights '
                f'(it holds {present})',
                logger='current')
        checkpoint = checkpoint[present[0]]
    if not isinstance(checkpoint, dict):
        raise TypeError('`checkpoint` should hold a state dict, but got '
                        f'{type(checkpoint).__name__}.')
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in checkpoint.items())


def load_from_url_weights_only(filename: str, map_location: Any = None) -> Any:
    """MMEngine's loader for URL and model-zoo schemes."""
    return load_untrusted(filename, map_location or 'cpu')


__all__ = [
    'CorruptCheckpointError', 'InertLogState', 'extract_state_dict',
    'load_file', 'load_from_local_weights_only', 'load_untrusted', 'resolve',
    'resuming_own_checkpoint'
]
