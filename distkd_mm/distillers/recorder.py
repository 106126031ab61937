"""Forward-hook taps that record what named submodules take or return."""
import difflib
from typing import Any, Callable, Dict, Iterable, List, Optional

from torch import nn
from torch.utils.hooks import RemovableHandle

# ``read(module, args, kwargs)``: what to keep of one call's inputs.
InputReader = Callable[[nn.Module, tuple, dict], Any]
# Path -> what its calls returned (or took), one entry per call.
Records = Dict[str, List[Any]]


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
    # Loss modules (`loss_cls`, `loss_dice`, ...) compute losses from
    # targets, never what a term compares: no suggestion names one.
    candidates = [
        name for name in modules
        if not name.rsplit('.', 1)[-1].startswith('loss')
    ]
    close = difflib.get_close_matches(path, candidates, n=3, cutoff=0.6)
    hint = (f' Did you mean {", ".join(repr(c) for c in close)}?'
            if close else ' Print `model.named_modules()` to list them.')
    raise ValueError(f'`{side}` tap should name a submodule of the {side}, '
                     f'but got {path!r}, which does not exist.{hint}')


class Recorder:
    """Records what named submodules return, or take, inside ``with`` only.

    ``with recorder as records:`` hooks the submodules and fills
    ``records`` (path -> list, one entry per call, in call order: a head
    shared across FPN levels runs once per level); leaving the block removes
    the hooks, so nothing is recorded outside a training step, no hook stays
    on the model between steps, and ``records`` is freed with the caller's
    reference. Paths are checked when the recorder is built. A path naming a
    ``ModuleList`` (a per-level branch) records each member's calls, in
    call order.

    Args:
        model: The model whose submodules are tapped.
        paths: Dotted submodule paths ('' is the model itself).
        side: ``'student'`` or ``'teacher'``, named in errors.
        inputs: Record from each call's inputs instead of its output:
            ``inputs(module, args, kwargs)`` runs before the module does and
            returns what to keep (it may raise to refuse a call the caller
            cannot use). This is how a two-stage teacher gets the RoIs the
            student's RoI extractor was called with. None (default) records
            the outputs.
    """

    def __init__(self,
                 model: nn.Module,
                 paths: Iterable[str],
                 side: str,
                 inputs: Optional[InputReader] = None) -> None:
        self.modules = {
            path: get_submodule(model, path, side)
            for path in dict.fromkeys(paths)
        }
        self.inputs = inputs
        self._handles: List[RemovableHandle] = []

    def __enter__(self) -> Records:
        if self._handles:
            raise RuntimeError('A Recorder records one scope at a time; '
                               'leave the first `with` block first.')
        records: Records = {path: [] for path in self.modules}
        self._handles = [
            self._hook(member, records[path])
            for path, module in self.modules.items()
            for member in _callables(module)
        ]
        return records

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, module: nn.Module, calls: List[Any]) -> RemovableHandle:
        read = self.inputs
        if read is None:

            def record_output(module: nn.Module, args: tuple,
                              output: Any) -> None:
                calls.append(output)

            return module.register_forward_hook(record_output)

        def record_inputs(module: nn.Module, args: tuple,
                          kwargs: dict) -> None:
            calls.append(read(module, args, kwargs))

        return module.register_forward_pre_hook(
            record_inputs, with_kwargs=True)


def _callables(module: nn.Module) -> List[nn.Module]:
    """The modules whose calls a tap on ``module`` records.

    A ``ModuleList``/``ModuleDict`` is never called itself (its owner calls
    its members, e.g. one conv per FPN level in RTMDet's and YOLOX's heads),
    so a hook on it would record nothing: its members are hooked instead,
    all recording into the tap's one list, in call order.
    """
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return [m for member in module.children() for m in _callables(member)]
    return [module]
