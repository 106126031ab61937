"""Every command in README.md and docs/*.md runs as written.

The shell blocks of the front page and the docs are what a user copies, so
they are checked here:

- a block fenced as ```` ```shell cpu-tested ```` runs on a CPU in seconds:
  it runs as written, with bash, in a scratch folder that holds the
  repository's ``tools``, ``configs`` and ``.venv`` (so its work dirs go
  there), with this interpreter's ``python`` first on ``PATH``;
- every other shell command (GPU, cluster, full-size training) is parsed:
  the repository paths and ``pkg::`` configs it names exist, the ``make``
  targets are in the Makefile, and the Python tools it starts accept its
  arguments: each tool's own argument parser reads them, and the tool stops
  right there (``argparse``'s ``parse_args`` raises once it has parsed), so
  nothing is built, downloaded or launched. ``tools/test.py`` hands its
  flags to the task library's own ``tools/test.py``, whose parser reads
  them; the launch scripts hand theirs to ``tools/train.py`` /
  ``tools/test.py``.

Relative links of the pages must point at files (and headings) that exist.
"""
import argparse
import contextlib
import glob
import importlib.util
import io
import os
import os.path as osp
import re
import runpy
import shlex
import subprocess
import sys
from typing import Dict, List, NamedTuple

import pytest
from distkd_testing import REPO, load_tool

FENCE = re.compile(r'^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$',
                   re.M | re.S)
SHELL = ('shell', 'bash', 'sh')
CPU_TESTED = 'cpu-tested'
PYTHONS = ('python', 'python3', '.venv/bin/python')
# NAME=$(python -c '...'): a variable a later command of the block uses.
CAPTURE = re.compile(
    r"^(?P<name>[A-Za-z_]\w*)=\$\(python -c '(?P<code>[^']*)'\)$")
ASSIGNMENT = re.compile(r'^[A-Za-z_]\w*=')
REPO_PATH = re.compile(
    r'^(tools|configs|docs|tests|requirements|\.dev_scripts)/[\w./+-]*$')
# The launch scripts and what they pass to which tool: the positions of
# the config (and checkpoint), then the rest of the command line.
LAUNCHERS = {
    'tools/dist_train.sh': ('tools/train.py', 1, 2),
    'tools/dist_test.sh': ('tools/test.py', 2, 3),
    'tools/slurm_train.sh': ('tools/train.py', None, 4),
}


class Command(NamedTuple):
    where: str  # file:line, for the failure message
    words: List[str]  # the text of the command, then its words


def doc_files() -> List[str]:
    return ['README.md'] + sorted(
        osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'docs/*.md')))


def shell_blocks(path: str):
    """``(line, info words, body)`` of each shell block of ``path``."""
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        text = f.read()
    for match in FENCE.finditer(text):
        info = match['info'].split()
        if info and info[0] in SHELL:
            line = text.count('\n', 0, match.start()) + 2
            yield line, info, match['body']


def block_commands(path: str, line: int, body: str):
    """The commands of a block: continuation lines joined, comments and
    blank lines dropped."""
    lines = body.split('\n')
    i = 0
    while i < len(lines):
        start = i
        text = lines[i]
        while text.endswith('\\') and i + 1 < len(lines):
            i += 1
            text = text[:-1] + ' ' + lines[i].strip()
        i += 1
        text = text.strip()
        if text and not text.startswith('#'):
            yield Command(f'{path}:{line + start}', text)


ALL_BLOCKS = [(path, line, info, body) for path in doc_files()
              for line, info, body in shell_blocks(path)]


class Parsed(Exception):
    """A tool's parser read its arguments; the tool stops here."""


def parse_with_tool(script: str, argv: List[str], where: str) -> None:
    """Run ``script``'s parser on ``argv``, and nothing after it."""
    real = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        raise Parsed(real(self, args, namespace))

    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *argv]
    # As `python script.py` does: the script's folder comes first.
    sys.path.insert(0, osp.dirname(script))
    argparse.ArgumentParser.parse_args = parse_args
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name='__main__')
    except Parsed:
        return
    except SystemExit as e:
        raise AssertionError(f'{where}: {script} refuses {argv}: '
                             f'{err.getvalue()[-800:]}') from e
    finally:
        argparse.ArgumentParser.parse_args = real
        sys.argv, sys.path[:] = old_argv, old_path
    raise AssertionError(f'{where}: {script} ran without parsing arguments')


def package_config(word: str) -> str:
    """The file of a ``pkg::path`` config in the installed package."""
    package, path = word.split('::', 1)
    spec = importlib.util.find_spec(package)
    assert spec is not None, f'{package} is not installed'
    return osp.join(osp.dirname(spec.origin), '.mim', 'configs', path)


def check_paths(command: Command) -> None:
    for word in command.words:
        # --work-dir=DIR names its path after the '='.
        value = word.partition('=')[2] if word.startswith('--') else word
        if REPO_PATH.match(value):
            assert osp.exists(osp.join(REPO, value)), \
                f'{command.where}: {value} does not exist'
        elif re.match(r'^mm\w+::', value):
            assert osp.isfile(package_config(value)), \
                f'{command.where}: {value} does not exist'


def check_tool_args(command: Command, variables: Dict[str, str]) -> None:
    """The tool a command starts accepts its arguments."""
    words = [os.path.expandvars(w) for w in command.words]
    for name, value in variables.items():
        words = [w.replace(f'${name}', value) for w in words]
    program, args = words[0], words[1:]
    if program == 'make':
        with open(osp.join(REPO, 'Makefile')) as f:
            targets = re.findall(r'^([\w-]+):', f.read(), re.M)
        goals = [a for a in args if '=' not in a]
        assert goals and set(goals) <= set(targets), \
            f'{command.where}: make {goals}, the Makefile has {targets}'
        return
    if program == 'bash' and args[0] in LAUNCHERS:
        tool, fixed, rest = LAUNCHERS[args[0]]
        if args[0] == 'tools/slurm_train.sh':
            tool_args = [args[3], '--work-dir', args[4], *args[5:]]
        else:
            tool_args = args[1:1 + fixed] + args[1 + rest:]
            assert args[1 + fixed].isdigit(), \
                f'{command.where}: GPUS should be a number'
        program, args = 'python', [tool, *tool_args]
    if program not in PYTHONS or not args[0].endswith('.py'):
        return
    script = args[0] if osp.isabs(args[0]) else osp.join(REPO, args[0])
    if osp.relpath(script, REPO) == osp.join('tools', 'test.py'):
        # Its own part is the config and checkpoint; the rest is the
        # library's script's, which reads them as its parser does.
        test = load_tool('test')
        from distkd_mm.apis.attach import load_config
        config = args[1] if '::' in args[1] else osp.join(REPO, args[1])
        library = test.library_script(load_config(config))
        parse_with_tool(library, args[1:], command.where)
        return
    parse_with_tool(script, args[1:], command.where)


def test_the_pages_have_shell_blocks_and_some_run_on_the_cpu():
    assert len(ALL_BLOCKS) >= 10
    assert any(CPU_TESTED in info for _, _, info, _ in ALL_BLOCKS)
    for path, line, info, body in ALL_BLOCKS:
        assert list(block_commands(path, line, body)), f'{path}:{line}'


def test_every_documented_command_parses():
    variables: Dict[str, str] = {}
    checked = 0
    for path, line, info, body in ALL_BLOCKS:
        for command in block_commands(path, line, body):
            capture = CAPTURE.match(command.words)
            if capture:
                # What the variable holds, as the shell would compute it.
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    exec(capture['code'], {})
                variables[capture['name']] = out.getvalue().strip()
                continue
            words = shlex.split(command.words, comments=True)
            while words and ASSIGNMENT.match(words[0]):
                words.pop(0)  # the environment of the command
            if not words:
                continue
            command = command._replace(words=words)
            check_paths(command)
            check_tool_args(command, variables)
            checked += 1
    assert checked >= 20


def test_the_readme_opens_with_the_demo_and_the_test_command_ci_runs():
    _, _, body = next(shell_blocks('README.md'))
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        assert f.read().split('\n')[2].startswith('```')  # below the title
    opening = [
        shlex.split(c.words, comments=True)
        for c in block_commands('README.md', 0, body)
    ]
    assert opening == [['make', 'demo'], ['make', 'test']]
    with open(osp.join(REPO, '.ci', 'run')) as f:
        ci = [shlex.split(line, comments=True) for line in f]
    assert ['make', 'test'] in ci


def test_the_readme_config_snippet_builds_a_distiller(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        snippets = [
            m['body'] for m in FENCE.finditer(f.read())
            if m['info'].strip() == 'python'
        ]
    assert len(snippets) == 1
    (tmp_path / 'leaf.py').write_text(snippets[0])
    cfg = Config.fromfile(str(tmp_path / 'leaf.py'))
    # The config as written; only the teacher's download is left out.
    assert cfg.model.teacher_ckpt.startswith('https://')
    cfg.model.teacher_ckpt = None
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'Distiller'
    assert type(model.student).__name__ == 'ImageClassifier'
    assert list(model.terms) == ['loss_dist']


def test_the_import_effects_page_lists_exactly_the_effects_of_the_code():
    from distkd_mm.import_effects import EFFECTS
    with open(osp.join(REPO, 'docs', 'reliability.md'), encoding='utf-8') as f:
        rows = re.findall(r'^\| `(\w+)` \|', f.read(), re.M)
    assert rows == [effect.name for effect in EFFECTS]


def test_a_wrong_flag_in_a_documented_command_is_found():
    command = Command('doc.md:1',
                      ['python', 'tools/train.py', 'x.py', '--teacher-ckpts'])
    with pytest.raises(AssertionError, match='refuses'):
        check_tool_args(command, {})
    command = Command('doc.md:1', ['python', 'tools/tarin.py'])
    with pytest.raises(AssertionError, match='does not exist'):
        check_paths(command)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def anchors(path: str) -> set:
    with open(path, encoding='utf-8') as f:
        text = FENCE.sub('', f.read())
    return {slug(h) for h in re.findall(r'^#+ (.*)$', text, re.M)}


def test_relative_links_point_at_files_and_headings_that_exist():
    broken = []
    for page in doc_files():
        with open(osp.join(REPO, page), encoding='utf-8') as f:
            text = FENCE.sub('', f.read())
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'^[a-z]+://', target):
                continue
            file, _, anchor = target.partition('#')
            path = osp.normpath(osp.join(REPO, osp.dirname(page), file))
            if not file:  # a heading of the page itself
                path = osp.join(REPO, page)
            if not osp.exists(path):
                broken.append(f'{page}: {target}')
            elif anchor and path.endswith('.md') and \
                    anchor not in anchors(path):
                broken.append(f'{page}: {target} (no such heading)')
    assert broken == []


def test_every_repository_file_the_pages_name_exists():
    # In prose, tables and code alike: a moved script or config fails here.
    named = re.compile(r'(?<![\w./-])((?:tools|configs|distkd_mm|tests|docs|'
                       r'requirements|\.dev_scripts)'
                       r'/[\w./-]*\.(?:py|sh|md|yml|txt))')
    missing = []
    for page in doc_files():
        with open(osp.join(REPO, page), encoding='utf-8') as f:
            for path in named.findall(f.read()):
                if not osp.exists(osp.join(REPO, path)):
                    missing.append(f'{page}: {path}')
    assert missing == []


@pytest.mark.slow  # starts the documented command lines
@pytest.mark.parametrize(
    'path,line,body',
    [(p, n, b) for p, n, info, b in ALL_BLOCKS if CPU_TESTED in info],
    ids=[f'{p}:{n}' for p, n, info, _ in ALL_BLOCKS if CPU_TESTED in info])
def test_a_cpu_tested_block_runs_as_written(path, line, body, tmp_path):
    for folder in ('tools', 'configs', '.venv'):
        if osp.exists(osp.join(REPO, folder)):
            os.symlink(osp.join(REPO, folder), tmp_path / folder)
    env = dict(
        os.environ,
        PATH=osp.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
        PYTHONPATH=REPO,
        OMP_NUM_THREADS='1')
    result = subprocess.run(['bash', '-euo', 'pipefail', '-c', body],
                            cwd=tmp_path,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=900)
    assert result.returncode == 0, \
        f'{path}:{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}'
