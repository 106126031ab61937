"""The import graph of distkd_mm flows one way: no cycle, no upward import.

Every module of the package is parsed (not imported), with the imports
inside functions, so a lazy import that only dodges a cycle is caught too.
"""
import ast
import glob
import os.path as osp
from typing import Dict, List, Set, Tuple

from distkd_testing import REPO

PACKAGE = 'distkd_mm'
# Top first. A module may import its own subpackage and the subpackages of
# lower layers; subpackages of one layer are independent of each other.
# hooks sits above distillers: DistillHook recognises the Distiller by its
# type, while no distiller needs a hook.
LAYERS = (
    ('', ),  # distkd_mm/__init__.py: registers everything, imported by none
    ('import_effects', ),  # its changes to MMEngine, applied by the root
    ('apis', ),  # the application layer: config presets, CLI helpers
    ('hooks', ),
    ('distillers', ),
    ('losses', 'utils', 'models', 'optim', 'datasets', 'version'),
)
RANK = {pkg: rank for rank, pkgs in enumerate(LAYERS) for pkg in pkgs}

Sources = Dict[str, Tuple[bool, str]]  # module -> (is a package, source)


def package_sources() -> Sources:
    """Every module of distkd_mm, by dotted name."""
    sources = {}
    for path in glob.glob(
            osp.join(REPO, PACKAGE, '**', '*.py'), recursive=True):
        parts = osp.relpath(path, REPO)[:-len('.py')].split(osp.sep)
        is_package = parts[-1] == '__init__'
        name = '.'.join(parts[:-1] if is_package else parts)
        with open(path) as f:
            sources[name] = (is_package, f.read())
    return sources


def imported_modules(module: str, is_package: bool, source: str,
                     modules: Set[str]) -> Set[str]:
    """The modules of ``modules`` that ``module`` imports, anywhere in its
    code (functions included)."""
    base = module.split('.') if is_package else module.split('.')[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[:len(base) - node.level + 1] if node.level else []
            origin = '.'.join(parent + ([node.module] if node.module else []))
            # `from pkg import x` imports the module pkg.x if there is one,
            # else the name x of pkg.
            for alias in node.names:
                name = f'{origin}.{alias.name}'
                found.add(name if name in modules else origin)
    return (found & modules) - {module}


def import_graph(sources: Sources) -> Dict[str, Set[str]]:
    """Module -> the modules of the package it imports."""
    return {
        module: imported_modules(module, is_package, source, set(sources))
        for module, (is_package, source) in sources.items()
    }


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def subpackage(module: str) -> str:
    """``distkd_mm.losses.kd_loss`` -> ``losses``; the root -> ``''``."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def upward_imports(graph: Dict[str, Set[str]]) -> List[str]:
    """Imports of a higher layer or of a sibling subpackage."""
    bad = []
    for module, targets in sorted(graph.items()):
        src = subpackage(module)
        for target in sorted(targets):
            dst = subpackage(target)
            if dst != src and RANK[dst] <= RANK[src]:
                bad.append(f'{module} imports {target}')
    return bad


def test_every_subpackage_has_a_layer():
    missing = {subpackage(m) for m in package_sources()} - set(RANK)
    assert not missing, f'add {sorted(missing)} to LAYERS'


def test_the_package_has_no_import_cycle():
    cycles = find_cycles(import_graph(package_sources()))
    assert not cycles, 'modules that import each other: ' + '; '.join(
        ' <-> '.join(cycle) for cycle in cycles)


def test_no_module_imports_a_higher_layer_or_a_sibling():
    upward = upward_imports(import_graph(package_sources()))
    assert not upward, ('imports against the layers (move the shared code '
                        'down instead): ' + '; '.join(upward))


def test_only_the_package_root_imports_the_import_effects():
    # One module holds them, one call at import applies them: nothing else
    # may apply them again or lean on them.
    graph = import_graph(package_sources())
    assert sorted(module for module, targets in graph.items()
                  if f'{PACKAGE}.import_effects' in targets) == [PACKAGE]


def test_a_function_level_import_that_closes_a_cycle_is_found():
    # The cycle this package had: DISTLoss.forward imported lean_dist, which
    # imported the helpers of dist_loss.
    sources = {
        'distkd_mm.losses': (True, 'from .dist_loss import DISTLoss\n'),
        'distkd_mm.losses.dist_loss':
        (False, 'def forward():\n    from .lean_dist import lean\n'),
        'distkd_mm.losses.lean_dist':
        (False, 'from .dist_loss import pearson\n'),
        'distkd_mm.utils.weights': (False, 'from ..hooks import Hook\n'),
        'distkd_mm.hooks': (True, ''),
    }
    graph = import_graph(sources)
    assert find_cycles(graph) == [[
        'distkd_mm.losses.dist_loss', 'distkd_mm.losses.lean_dist'
    ]]
    assert upward_imports(graph) == [
        'distkd_mm.utils.weights imports distkd_mm.hooks'
    ]


def test_tools_use_no_private_name_of_the_package():
    private = []
    for path in sorted(
            glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True)):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [f'{node.module}.{a.name}' for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            private += [
                f'{osp.relpath(path, REPO)}: {name}' for name in names
                if name.startswith(PACKAGE + '.') and any(
                    part.startswith('_') and not part.startswith('__')
                    for part in name.split('.'))
            ]
    assert private == []
