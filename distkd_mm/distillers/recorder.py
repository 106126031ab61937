"""Forward-hook taps that record what named submodules return."""
import difflib
from typing import Any, Dict, Iterable, List

from torch import nn


def get_submodule(model: nn.Module, path: str, side: str) -> nn.Module:
    """Return ``model``'s submodule at dotted ``path``; '' is the model.

    A typo fails at build time, with the closest existing paths, instead of
    silently distilling nothing.
    """
    if path == '':
        return model
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    close = difflib.get_close_matches(path, list(modules), n=3, cutoff=0.6)
    hint = (f' Did you mean {", ".join(repr(c) for c in close)}?'
            if close else ' Print `model.named_modules()` to list them.')
    raise ValueError(f'`{side}` tap should name a submodule of the {side}, '
                     f'but got {path!r}, which does not exist.{hint}')


class Recorder:
    """Records every output of a set of named submodules.

    Heads shared across FPN levels run once per level, so each tap keeps a
    list of outputs in call order; the distiller pairs student and teacher
    calls by position.
    """

    def __init__(self, model: nn.Module, paths: Iterable[str],
                 side: str) -> None:
        self.outputs: Dict[str, List[Any]] = {}
        self._handles = []
        for path in dict.fromkeys(paths):
            module = get_submodule(model, path, side)
            self.outputs[path] = []
            self._handles.append(
                module.register_forward_hook(self._hook(path)))

    def _hook(self, path: str):

        def record(module: nn.Module, args: tuple, output: Any) -> None:
            self.outputs[path].append(output)

        return record

    def clear(self) -> None:
        for outputs in self.outputs.values():
            outputs.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
