"""Where a config name points, checked before anything executes it.

A config is Python that :meth:`mmengine.config.Config.fromfile` runs, so
the name a user or a config gives (the student on the command line, a
Distiller's ``teacher``) is resolved here first, for the teacher and the
student alike:

- ``'pkg::rel/path.py'`` resolves inside that package's configs only
  (``<package>/.mim/configs``, where :func:`mmengine.hub.get_config` looks).
  mmengine joins ``rel/path.py`` to that folder as given, so
  ``'mmdet::retinanet/../../../evil.py'`` (or an absolute path) would run
  a file outside the package; the real path (``..`` and links resolved) is
  refused unless it lies inside. A package that is not installed is refused
  too: ``get_config`` would ``pip install`` it.
- A URL is refused: MMEngine reads config files from disk, and a config
  fetched from a server would be code from that server.
- Any other string is a local file, passed on as it is.
"""
import os.path as osp
import re
from typing import Optional, Tuple

from mmengine.config.utils import MODULE2PACKAGE, _get_cfg_metainfo
from mmengine.utils import get_installed_path, is_installed

from .urls import redact_url

# `scheme://`: http(s), s3, ftp, ... (a Windows `C:\` has no `//`).
_URL = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')


def is_url(path: str) -> bool:
    """Whether ``path`` is written as a URL (``scheme://...``)."""
    return bool(_URL.match(path))


def _package_configs(path: str, arg: str) -> Tuple[str, str, str]:
    """``'pkg::rel'`` -> the package's folder, its configs folder, ``rel``."""
    module, _, rel = path.partition('::')
    if module not in MODULE2PACKAGE or '::' in rel or not rel:
        raise ValueError(
            f"`{arg}` should be a config file or 'pkg::path/to/config.py' "
            f'with pkg one of {sorted(MODULE2PACKAGE)}, but got {path!r}; '
            'give a file path, or the package name and its config path.')
    package = MODULE2PACKAGE[module]
    if not is_installed(package):
        raise ValueError(
            f'`{arg}` {path!r} should name a config of an installed package, '
            f'but {package} is not installed; install it (pip install '
            f'{package}) or give a config file path.')
    package_path = get_installed_path(package)
    return package_path, osp.join(package_path, '.mim', 'configs'), rel


def _metafile_entry(package_path: str, rel: str) -> Optional[dict]:
    # mmengine's own lookup (get_config's first step): a config listed in
    # the package's model-index metafiles, with its `Weights`.
    try:
        return _get_cfg_metainfo(package_path, rel)
    except (ValueError, FileNotFoundError):
        return None


def resolve_config_path(path: str, arg: str = 'config') -> str:
    """The file ``path`` names, refused if it is not allowed.

    Args:
        path: A config file, or ``'pkg::rel/path.py'`` of an installed
            OpenMMLab package.
        arg: The argument's name, for the error messages.

    Returns:
        A local file path for :meth:`Config.fromfile`: ``path`` itself, or,
        for ``pkg::``, the real path inside ``<package>/.mim/configs``.

    Raises:
        TypeError: ``path`` is not a string.
        ValueError: ``path`` is a URL, names a package that is not
            installed, or resolves outside that package's configs.
    """
    if not isinstance(path, str):
        raise TypeError(f"`{arg}` should be a config file or a 'pkg::path' "
                        f'config, but got {type(path)}.')
    if is_url(path):
        raise ValueError(
            f'`{arg}` should be a local config file or a \'pkg::path\' '
            f'config, but got the URL {redact_url(path)!r}. URLs are not '
            'accepted here: download the config and pass its path.')
    if '::' not in path:
        return path
    package_path, root, rel = _package_configs(path, arg)
    entry = _metafile_entry(package_path, rel)
    # As get_config: the metafile's `Config` (relative to .mim), else the
    # name under .mim/configs.
    if entry is not None:
        candidate = osp.join(package_path, '.mim', entry['Config'])
    else:
        candidate = osp.join(root, rel)
    # Real paths on both sides: an editable install links .mim/configs to
    # the checkout's configs, which is the package's own folder.
    real_root = osp.realpath(root)
    real = osp.realpath(candidate)
    if osp.commonpath([real_root, real]) != real_root:
        raise ValueError(
            f'`{arg}` {path!r} should name a config inside {real_root} '
            f'(the configs of {package_path}), but it resolves to {real}; '
            'give a path relative to that folder without `..` or a leading '
            '`/`, or pass a config file of your own by its path.')
    if not osp.isfile(real):
        raise FileNotFoundError(
            f'`{arg}` {path!r} should name a config file of the package, '
            f'but {real} does not exist; check the name under {real_root}.')
    return real


def package_config_weights(path: str, arg: str = 'teacher') -> Optional[str]:
    """The ``Weights`` URL a package's metafile lists for a ``pkg::`` config.

    Args:
        path: ``'pkg::rel/path.py'``; checked as :func:`resolve_config_path`
            does first.
        arg: The argument's name, for the error messages.

    Returns:
        The URL, or None when the metafiles list no weights for it.
    """
    resolve_config_path(path, arg)
    package_path, _, rel = _package_configs(path, arg)
    entry = _metafile_entry(package_path, rel)
    return None if entry is None else entry.get('Weights')
