"""What ``import distkd_mm`` changes in the modules loaded before it.

Run as a script (in a fresh interpreter): it first imports, on their own,
the modules that ``import distkd_mm`` loads (listed by a child process), so
that what changes afterwards is the package's doing and not the libraries'
own import-time set-up. It then records every entry of every loaded
module, of each class a module defines and of each object with a
``__dict__`` a module holds (the registries), imports the package, records
again, calls ``distkd_mm.import_effects.apply()`` a second time and records
a third time. It prints the two differences as JSON: entries replaced,
removed and added, each as a dotted name (a dict entry as ``name[key]``).
"""
import importlib
import json
import subprocess
import sys
import types
import warnings
from typing import Any, Dict, Iterator, List, Tuple

PACKAGE = 'distkd_mm'
LIST_MODULES = ('import sys, distkd_mm; print("\\n".join(m for m in '
                'sys.modules if m.split(".")[0] != "distkd_mm"))')
# Modules that are this script itself under another name.
SKIP_MODULES = ('__main__', '__mp_main__')


def namespaces() -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(dotted name, entries) of every namespace, each object once."""
    seen = set()
    for name, module in sorted(sys.modules.items()):
        if not isinstance(module, types.ModuleType) or \
                name in SKIP_MODULES or name.split('.')[0] == PACKAGE:
            continue
        members = dict(vars(module))
        yield name, members
        for key, value in sorted(members.items()):
            if isinstance(value, types.ModuleType) or id(value) in seen:
                continue
            if isinstance(value, type):
                if value.__module__ != name:
                    continue  # recorded where it is defined
            elif not isinstance(getattr(value, '__dict__', None), dict):
                continue
            seen.add(id(value))
            yield f'{name}.{key}', dict(vars(value))


def snapshot() -> Dict[str, Any]:
    """Dotted name -> the object it holds (kept, compared by identity);
    a dict's entries as ``name[key]``, a list as a tuple of its items."""
    state = {}
    for space, members in namespaces():
        for key, value in members.items():
            name = f'{space}.{key}'
            if isinstance(value, dict):
                state.update(
                    (f'{name}[{k!r}]', v) for k, v in list(value.items()))
            elif isinstance(value, list):
                state[name] = tuple(value)
            else:
                state[name] = value
    return state


def same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(x is y for x, y in zip(a, b))
    return a is b


def diff(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, List]:
    return dict(
        replaced=sorted(k for k, v in before.items()
                        if k in after and not same(v, after[k])),
        removed=sorted(k for k in before if k not in after),
        added=sorted(k for k in after if k not in before))


def main() -> None:
    modules = subprocess.run([sys.executable, '-c', LIST_MODULES],
                             check=True,
                             capture_output=True,
                             text=True).stdout.split()
    # One filter list for all three records; torch's deprecated names
    # warn when they are read, which would only add noise.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name in modules:
            importlib.import_module(name)
        before = snapshot()
        package = importlib.import_module(PACKAGE)
        after = snapshot()
        package.import_effects.apply()
        again = snapshot()
    result = dict(import_=diff(before, after), apply_again=diff(after, again))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
