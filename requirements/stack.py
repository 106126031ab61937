"""Read requirements/stack.txt, the one file that holds the stack's versions.

setup.py, tools/check_env.py and the environment scripts in .dev_scripts/
load this file by path (standard library only: it runs before anything is
installed), so that no other file restates a version.

    python requirements/stack.py pin NAME...       the versions installed
    python requirements/stack.py without NAME...   the constraints less NAMEs
"""
import os.path as osp
import re
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

STACK_TXT = osp.join(osp.dirname(osp.abspath(__file__)), 'stack.txt')
_LINE = re.compile(r'([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)')


class Entry(NamedTuple):
    """One package of the stack.

    Attributes:
        name: The distribution name as pip spells it (``mmsegmentation``).
        supported: The range distkd_mm supports, e.g. ``>=2.5``.
        pin: The version ``make env`` installs, or None for a range only.
    """
    name: str
    supported: str
    pin: Optional[str]

    @property
    def requirement(self) -> str:
        """What setup.py declares: ``name`` and the supported range."""
        return self.name + self.supported

    @property
    def floor(self) -> Optional[str]:
        """The lowest supported version (the ``>=`` bound), if any."""
        match = re.search(r'>=\s*([^,\s]+)', self.supported)
        return match.group(1) if match else None


def read_stack(path: str = STACK_TXT) -> Dict[str, Entry]:
    """The stack's packages by distribution name, in the file's order."""
    stack = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            name, specs = _LINE.fullmatch(line).groups()
            parts = [s.strip() for s in specs.split(',') if s.strip()]
            pins = [s[2:].strip() for s in parts if s.startswith('==')]
            rest = [s for s in parts if not s.startswith('==')]
            pin = pins[0] if pins else None
            # A pin alone supports that version and newer.
            if not rest and pin:
                rest = [f'>={pin}']
            stack[name] = Entry(name, ','.join(rest), pin)
    return stack


def version_tuple(version: str) -> Tuple[int, ...]:
    """'2.11.0+cu130' -> (2, 11, 0); ignores local and pre-release parts."""
    return tuple(int(x) for x in re.findall(r'\d+', version.split('+')[0])[:3])


def without(names: Sequence[str], path: str = STACK_TXT) -> List[str]:
    """The constraint lines of the file less those of ``names`` (a
    ``--system-torch`` venv keeps the machine's torch and torchvision)."""
    skip = {n.lower() for n in names}
    lines = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            spec = line.split('#', 1)[0].strip()
            match = _LINE.fullmatch(spec) if spec else None
            if match and match.group(1).lower() not in skip:
                lines.append(spec)
    return lines


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] not in ('pin', 'without'):
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    if argv[0] == 'without':
        print('\n'.join(without(argv[1:])))
        return 0
    stack = read_stack()
    for name in argv[1:]:
        if name not in stack or not stack[name].pin:
            print(
                f'stack.py: error: `{name}` should be pinned in '
                f'{STACK_TXT}, but it is not; add a `{name}==X` line.',
                file=sys.stderr)
            return 1
        print(stack[name].pin)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
