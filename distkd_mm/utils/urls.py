"""URLs without their secrets: what the plugin records and logs.

A URL may carry credentials: user-info (``https://user:pw@host/x.pth``) or
a signed query string (``?token=...``, ``?X-Amz-Signature=...``). Whatever
the plugin writes (download logs and errors, the teacher record in every
checkpoint, the teacher-mismatch warning) holds :func:`redact_url` of it::

    https://user:pw@host/x.pth?token=abc  ->  https://host/x.pth

The config text is MMEngine's to write: the Runner logs it, dumps it into
the work dir and saves it as every checkpoint's ``meta.cfg``, each time
from its own copy of the config. :func:`hide_url_secrets` (tools/train.py
calls it before it builds the Runner) replaces each checkpoint URL with a
secret in the config (the values of :data:`CHECKPOINT_KEYS`, which all load
through this plugin's download cache) by its redacted form and keeps the
full URL in this process only; the download cache looks the redacted form
up again (:func:`full_url`), so the run downloads with the token while
nothing it writes holds one. URLs under other keys (say a tracking
server's) are left as they are: their readers are not ours. A script that
builds its own Runner calls ``hide_url_secrets(cfg)`` before
``Runner.from_cfg(cfg)``.
"""
from typing import Any, Dict, List, Tuple
from urllib.parse import urlsplit, urlunsplit

# Keys whose URL values MMEngine or the Distiller load as checkpoints,
# through the download cache (the only reader of full_url).
CHECKPOINT_KEYS = ('teacher_ckpt', 'load_from', 'resume_from', 'checkpoint',
                   'pretrained')
# Redacted URL -> the full URL it stands for, in this process only.
_FULL_URLS: Dict[str, str] = {}


def redact_url(url: Any) -> Any:
    """``url`` without user-info, query string and fragment.

    Anything that is no ``scheme://`` URL (a local path, None) is returned
    unchanged, so callers may pass any checkpoint name.
    """
    if not isinstance(url, str) or '://' not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 host: keep only the scheme
        return url.split('://', 1)[0] + '://<unparsable URL>'
    host = parts.netloc.rpartition('@')[2]
    return urlunsplit((parts.scheme, host, parts.path, '', ''))


def has_secret(url: Any) -> bool:
    """Whether :func:`redact_url` removes anything from ``url``."""
    return redact_url(url) != url


def full_url(url: str) -> str:
    """The full URL that :func:`hide_url_secrets` replaced by ``url``."""
    return _FULL_URLS.get(url, url)


def hide_url_secrets(cfg: Any) -> List[str]:
    """Replace each checkpoint URL with a secret in ``cfg`` (in place) by
    its redacted form; downloads of the redacted form use the full URL.

    Checkpoint URLs are the string values of :data:`CHECKPOINT_KEYS`, at
    any depth (``model.teacher_ckpt``, ``load_from``,
    ``init_cfg.checkpoint``...).

    Args:
        cfg: An MMEngine ``Config``, a dict or a list, walked recursively.

    Returns:
        One note per hidden URL, for the run's log.

    Raises:
        ValueError: two different URLs of ``cfg`` redact to the same one
            (they differ only in their secrets), so a download could not
            tell them apart.
    """
    found: Dict[str, Tuple[str, str]] = {}
    _walk(cfg, '', found)
    notes = []
    for redacted, (url, where) in found.items():
        _FULL_URLS[redacted] = url
        notes.append(f'`{where}` holds a URL with credentials or a query '
                     f'string; the config that is logged, dumped and saved '
                     f'in checkpoints holds it as {redacted} (the download '
                     'uses the full URL).')
    return notes


def _walk(node: Any, where: str, found: Dict[str, Tuple[str, str]]) -> Any:
    if isinstance(node, str):
        is_url = node.startswith(('http://', 'https://'))
        if where.rpartition('.')[2] not in CHECKPOINT_KEYS or not is_url \
                or not has_secret(node):
            return node
        redacted = redact_url(node)
        seen = found.setdefault(redacted, (node, where))
        if seen[0] != node:
            raise ValueError(
                f'`{where}` and `{seen[1]}` should be URLs that differ in '
                'more than their user-info or query string, but both are '
                f'{redacted} without them. Give one of them another path '
                '(or a local copy).')
        return redacted
    if isinstance(node, list) or type(node) is tuple:
        items = [
            _walk(item, f'{where}[{i}]', found) for i, item in enumerate(node)
        ]
        if isinstance(node, tuple):
            return tuple(items)
        node[:] = items
        return node
    # A Config and a ConfigDict both behave as mappings here.
    if hasattr(node, 'keys') and hasattr(node, '__getitem__'):
        for key in list(node.keys()):
            value = node[key]
            new = _walk(value, f'{where}.{key}' if where else str(key), found)
            if new is not value:
                node[key] = new
    return node


__all__ = [
    'CHECKPOINT_KEYS', 'full_url', 'has_secret', 'hide_url_secrets',
    'redact_url'
]
