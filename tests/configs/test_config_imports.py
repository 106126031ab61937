"""Every config imports exactly the plugin modules that register its types.

Build-free: each config under configs/ is resolved without its imports, and
every ``type`` string in it is collected. A fresh interpreter then imports
only the config's ``custom_imports``, one module at a time, and looks each
type up in the registries of its scope (the config's ``default_scope``, or
a ``_scope_`` that ``pkg::`` loading set). After the imports every type is
found, and every listed module past the plugin itself (always listed)
registered at least one of the config's types (nothing listed is
unneeded).
"""
import functools
import glob
import json
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import pytest
from distkd_testing import REPO
from mmengine.config import Config

LEAVES = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))

# Run in a fresh interpreter: argv[1] is a JSON list of groups, each a pair
# (custom_imports, {config path: its (scope, type) pairs}); a group's
# imports include every earlier group's, so the modules imported so far are
# always the group's own.
CHECK = r'''
import importlib, json, sys
from mmengine.registry import Registry

def registries(scope, cache={}):
    if scope not in cache:
        module = importlib.import_module(f'{scope}.registry')
        cache[scope] = [
            r for r in vars(module).values() if isinstance(r, Registry)]
    return cache[scope]


def found(scope, name):
    return any(r.get(name) is not None for r in registries(scope))


def resolve(types, resolved):
    return resolved | {t for t in types - resolved if found(*t)}


groups = json.loads(sys.argv[1])
used = {
    path: {tuple(t) for t in types}
    for _, paths in groups for path, types in paths.items()
}
every = set().union(*used.values())
resolved = resolve(every, set())
imported, gained, report = [], {}, {}
for imports, paths in groups:
    for name in imports:
        if name in imported:
            continue
        importlib.import_module(name)
        imported.append(name)
        now = resolve(every, resolved)
        gained[name], resolved = now - resolved, now
    for path in paths:
        report[path] = dict(
            missing=sorted(f'{s}.{t}' for s, t in used[path] - resolved),
            unneeded=[
                m for m in imports
                if m != 'distkd_mm' and not gained[m] & used[path]])
print(json.dumps(report))
'''

# `type` of these keys names an mmcv op, not a registered class.
OPS = {'nms', 'roi_layer'}


def _types(node, scope: str, key: Optional[str], out: set) -> list:
    if isinstance(node, dict):
        scope = node.get('_scope_', scope)
        if isinstance(node.get('type'), str) and key not in OPS:
            out.add((scope, node['type']))
        for k, v in node.items():
            _types(v, scope, k, out)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _types(v, scope, key, out)
    return sorted(out)


@functools.lru_cache(maxsize=None)
def _read(path: str) -> Tuple[Tuple[str, ...], list]:
    """The config's custom_imports and the (scope, type) pairs it uses."""
    cfg = Config.fromfile(path, import_custom_modules=False)
    custom = cfg.get('custom_imports', {})
    assert custom.get('allow_failed_imports') is False, path
    types = _types(cfg.to_dict(), cfg.default_scope, None, set())
    return tuple(custom.get('imports', ())), types


def _chains(groups: Dict[tuple, dict]) -> List[list]:
    """Import sets in chains where each one includes the one before."""
    chains: List[list] = []
    for imports in sorted(groups, key=len):
        for chain in chains:
            if set(chain[-1][0]) <= set(imports):
                chain.append((imports, groups[imports]))
                break
        else:
            chains.append([(imports, groups[imports])])
    return chains


@pytest.fixture(scope='module')
def report() -> dict:
    groups: Dict[tuple, dict] = {}
    for path in LEAVES:
        imports, types = _read(path)
        groups.setdefault(imports, {})[path] = types
    # The chains are independent: their interpreters run side by side.
    procs = [
        subprocess.Popen([sys.executable, '-c', CHECK,
                          json.dumps(chain)],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         text=True) for chain in _chains(groups)
    ]
    out = {}
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        out.update(json.loads(stdout.splitlines()[-1]))
    return out


@pytest.mark.slow
def test_every_leaf_loads_the_plugin():
    assert len(LEAVES) > 0
    for path in LEAVES:
        assert 'distkd_mm' in _read(path)[0], path


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', LEAVES, ids=[osp.relpath(p, REPO) for p in LEAVES])
def test_custom_imports_register_every_type_and_nothing_more(path, report):
    assert report[path]['missing'] == []
    assert report[path]['unneeded'] == []
