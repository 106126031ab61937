"""``import distkd_mm`` changes exactly what ``import_effects.EFFECTS``
lists, in modules it does not own, and a second ``apply()`` changes
nothing more."""
import ast
import importlib
import json
import os.path as osp
import subprocess
import sys
from typing import Any

import pytest
from distkd_testing import REPO

from distkd_mm.import_effects import EFFECTS

# What any import adds: the package's modules, the interpreter's import,
# regex and source-line caches.
ADDED_BY_ANY_IMPORT = ("sys.modules['distkd_mm'", "sys.modules['distkd_mm.",
                       'sys.path_importer_cache[', 're._cache[',
                       'linecache.cache[')


def resolve(target: str) -> Any:
    """The object at a dotted ``target`` (a dict entry as ``name[key]``)."""
    name, _, key = target.partition('[')
    parts = name.split('.')
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj[ast.literal_eval(key[:-1])] if key else obj
    raise ValueError(f'{target!r} names no module')


def is_ours(obj: Any) -> bool:
    code = getattr(obj, '__code__', None)
    return code is not None and code.co_filename.startswith(
        osp.join(REPO, 'distkd_mm') + osp.sep)


def expected(added: str) -> bool:
    """Whether an entry added by the import is a registry name, one of
    the package's modules or an interpreter cache entry."""
    return ('._module_dict[' in added or '.__warningregistry__' in added
            or added.startswith(ADDED_BY_ANY_IMPORT))


def test_every_listed_target_holds_the_packages_replacement():
    targets = [t for effect in EFFECTS for t in effect.targets]
    assert len(targets) == len(set(targets))
    assert [t for t in targets if not is_ours(resolve(t))] == []
    assert all(effect.change and effect.why for effect in EFFECTS)


@pytest.mark.slow  # a fresh interpreter imports the whole stack twice
def test_import_changes_exactly_the_listed_effects():
    # A fresh interpreter: this one imported distkd_mm long ago.
    script = osp.join(REPO, 'tests', 'import_state.py')
    proc = subprocess.run([sys.executable, script],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    first = result['import_']
    assert first['replaced'] == sorted(t for effect in EFFECTS
                                       for t in effect.targets)
    assert first['removed'] == []
    # Otherwise only additions: new names in MMEngine's registries (a
    # replaced name would be listed as replaced), the package's modules.
    assert [name for name in first['added'] if not expected(name)] == []
    assert "mmengine.MODELS._module_dict['Distiller']" in first['added']
    assert result['apply_again'] == dict(replaced=[], removed=[], added=[])
