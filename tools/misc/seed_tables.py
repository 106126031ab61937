"""Write the seed's numbers from configs/seed_results.yml where they appear.

The seed's results (the official DIST README's tables) are written once, in
``configs/seed_results.yml``. This tool writes them into

- each task's ``configs/<task>/metafile.yml``: the ``Collections`` (one per
  task and method, so ``mim search`` gives every config its own README) and
  every model's ``In Collection`` and ``Results``; the rest of each entry
  (config path, teacher config and weights, epochs) stays as written;
- every Markdown file of the repository's front page, ``configs/`` and
  ``docs/`` holding a ``<!-- seed-table:NAME -->`` ...
  ``<!-- /seed-table:NAME -->`` pair: the table ``NAME`` replaces what is
  between the markers (files without markers are left alone).

Usage::

    python tools/misc/seed_tables.py          # rewrite what is out of date
    python tools/misc/seed_tables.py --check  # list it, exit 1 if any

``tests/configs/test_seed_tables.py`` runs the check, so a number changed in
one place only fails the tests.
"""
import argparse
import glob
import os.path as osp
import re
import sys
from typing import Dict, List, Optional

import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TABLE = 'configs/seed_results.yml'
MARKER = re.compile(
    r'(?P<open><!-- seed-table:(?P<name>[\w.-]+) -->\n)'
    r'(?P<body>.*?)'
    r'(?P<close><!-- /seed-table:(?P=name) -->)', re.S)
# Collections in this order in each metafile; their names end in the task
# (`DIST-cls`, `DIST-det`, ...): mim search keys collections by name over the
# whole model index, so one name in two metafiles would point every config
# of both at the README of the last one read.
METHODS = ('DIST', 'DIST+mimic', 'KD')
METHOD_LABELS = {'KD': 'KD (T=4)'}
PAPER = dict(
    Title='Knowledge Distillation from A Stronger Teacher',
    URL='https://arxiv.org/abs/2205.10536')


def load_table(repo: str = REPO) -> dict:
    """Read the seed table (``configs/seed_results.yml``) of ``repo``."""
    with open(osp.join(repo, TABLE), encoding='utf-8') as f:
        return yaml.safe_load(f)


def config_results(table: dict) -> Dict[str, dict]:
    """Every config the table names, with its task, method, role and number.

    Returns:
        dict: ``'configs/<task folder>/<file>'`` -> dict(task, dataset,
        method, role, value). A row shared by two tables (a YAML alias)
        counts once; a config given two different numbers is an error.
    """
    found: Dict[str, dict] = {}
    for name, spec in table['tables'].items():
        folder = table['tasks'][spec['task']]['folder']
        for row in spec.get('rows', []):
            for role, methods in row['configs'].items():
                for method, file in methods.items():
                    entry = dict(
                        task=spec['task'],
                        dataset=spec['dataset'],
                        method=method,
                        role=role,
                        value=row['results'][method])
                    path = f'{folder}/{file}'
                    if found.setdefault(path, entry) != entry:
                        raise ValueError(
                            f'`{path}` should have one result in {TABLE}, '
                            f'but got {found[path]} and {entry} (table '
                            f'{name}); give the config one row.')
    return found


def collections(table: dict, task: str, methods: set) -> List[dict]:
    """The metafile ``Collections`` of ``task``: one per method it has."""
    readme = table['tasks'][task]['folder'] + '/README.md'
    return [
        dict(
            Name=f'{method}-{task}',
            Metadata={'Training Techniques': ['Knowledge Distillation']},
            Paper=dict(PAPER),
            README=readme) for method in METHODS if method in methods
    ]


def metafile_text(table: dict, task: str, text: str) -> str:
    """``text`` (a metafile of ``task``) with the table's collections and
    results; every model must be in the table and every config of the
    table's ``task`` in the metafile."""
    meta = yaml.safe_load(text)
    spec = table['tasks'][task]
    results = {
        path: entry
        for path, entry in config_results(table).items()
        if entry['task'] == task
    }
    listed = [model['Config'] for model in meta['Models']]
    missing = sorted(set(results) - set(listed))
    unknown = sorted(set(listed) - set(results))
    if missing or unknown:
        raise ValueError(
            f'The models of {spec["folder"]}/metafile.yml should be the '
            f'configs of {TABLE}, but got {unknown} not in the table and '
            f'{missing} not in the metafile; add the row or the entry.')
    notes = table['notes']
    meta['Collections'] = collections(
        table, task, {entry['method']
                      for entry in results.values()})
    for model in meta['Models']:
        entry = results[model['Config']]
        note = notes['all']
        role_note = notes.get(f'{task}-{entry["role"]}',
                              notes.get(entry['role']))
        if role_note:
            note = f'{note}; {role_note}'
        model['In Collection'] = f'{entry["method"]}-{task}'
        model['Results'] = [{
            'Task': spec['task'],
            'Dataset': entry['dataset'],
            'Metrics': {
                spec['metric']: entry['value'],
                'Note': note
            }
        }]
    # The layout of the files as written (block style, no line wrapping).
    return yaml.safe_dump(
        meta, sort_keys=False, width=1000, allow_unicode=True)


def _num(value: float, spec: dict) -> str:
    return f'{value:.{spec["digits"]}f}'


def _result(row: dict, method: str, spec: dict) -> str:
    text = _num(row['results'][method], spec)
    if method in row.get('std', {}):
        text += f' ± {_num(row["std"][method], spec)}'
    return f'**{text}**' if method.startswith('DIST') else text


def _links(row: dict, roles: List[str], spec: dict, folder: str,
           md_dir: str) -> str:
    """The cell of a config column: the config of the row in one of
    ``roles`` (its file name), or one short link per method."""
    for role in roles:
        configs = row['configs'].get(role)
        if not configs:
            continue
        links = []
        for method in spec['methods']:
            if method not in configs:
                continue
            file = configs[method]
            # Both relative to the repository: a link that works in any
            # checkout or installed copy.
            target = osp.relpath(osp.join(folder, file), md_dir)
            links.append((method.lower(), file, target))
        if len(links) == 1:
            cell = f'[{links[0][1]}]({links[0][2]})'
        else:
            cell = ' / '.join(f'[{label}]({target})'
                              for label, _, target in links)
        if role == 'ours':
            cell += ': **no published recipe, settings are ours**'
        if role == 'variant' and spec.get('show_zoo'):
            zoo = row['zoo']
            cell += (f' ({_num(zoo["student"], spec)}, '
                     f'{_num(zoo["teacher"], spec)})')
        return cell
    return '-'


def _markdown(header: List[str], rows: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(cells) + ' |' for cells in [header] + rows]
    lines.insert(1, '|' + '---|' * len(header))
    return ''.join(line + '\n' for line in lines)


def _teachers(table: dict, spec: dict) -> str:
    """The teachers of some tables, the seed's score beside the zoo's."""
    seen: Dict[str, dict] = {}
    for source in spec['from']:
        for row in table['tables'][source]['rows']:
            teacher = row['teacher']
            entry = seen.setdefault(teacher['name'],
                                    dict(seed=[], zoo=row['zoo']['teacher']))
            if entry['zoo'] != row['zoo']['teacher']:
                raise ValueError(
                    f'The zoo score of `{teacher["name"]}` should be one '
                    f'number in {TABLE}, but got {entry["zoo"]} and '
                    f'{row["zoo"]["teacher"]}; correct the rows.')
            scores = [score for score, _ in entry['seed']]
            if teacher['score'] not in scores:
                entry['seed'].append(
                    (teacher['score'], row['student']['name']))
    rows = []
    for name, entry in seen.items():
        (first, _), *others = entry['seed']
        seed = _num(first, spec)
        if others:
            seed += ' (' + ', '.join(f'{_num(score, spec)} in the {student} '
                                     'row' for score, student in others) + ')'
        rows.append([name, seed, _num(entry['zoo'], spec)])
    return _markdown([column[0] for column in spec['columns']], rows)


def render(table: dict, name: str, md_path: str) -> str:
    """Table ``name`` in Markdown, its links relative to ``md_path`` (a
    path inside the repository)."""
    tables = table['tables']
    if name not in tables:
        raise ValueError(f'`seed-table:{name}` in {md_path} should be one of '
                         f'{sorted(tables)}, but got {name!r}; rename the '
                         f'markers or add the table to {TABLE}.')
    spec = tables[name]
    if spec['layout'] == 'teachers':
        return _teachers(table, spec)
    folder = table['tasks'][spec['task']]['folder']
    md_dir = osp.dirname(md_path) or '.'
    methods = spec['methods']
    student_column = spec.get('student_column', 'Student')
    if spec['layout'] == 'gain':
        header = [
            student_column, 'Teacher',
            f'Seed: student -> {" / ".join(methods)} (teacher)'
        ]
    else:
        header = [
            student_column, 'Teacher',
            'Seed: ' + ' / '.join(METHOD_LABELS.get(m, m) for m in methods)
        ]
    header += [column[0] for column in spec['columns']]
    rows = []
    for row in spec['rows']:
        student, teacher = row['student'], row['teacher']
        results = ' / '.join(_result(row, m, spec) for m in methods)
        if spec['layout'] == 'gain':
            cells = [
                student['name'], teacher['name'],
                f'{_num(student["score"], spec)} -> {results} '
                f'({_num(teacher["score"], spec)})'
            ]
        else:
            cells = [
                f'{student["name"]} ({_num(student["score"], spec)})',
                f'{teacher["name"]} ({_num(teacher["score"], spec)})', results
            ]
        cells += [
            _links(row, column[1:], spec, folder, md_dir)
            for column in spec['columns']
        ]
        rows.append(cells)
    return _markdown(header, rows)


def fill_markers(table: dict, text: str, md_path: str) -> str:
    """``text`` with every marked table region rewritten."""

    def fill(match: re.Match) -> str:
        return (match['open'] + render(table, match['name'], md_path) +
                match['close'])

    return MARKER.sub(fill, text)


def markdown_files(repo: str = REPO) -> List[str]:
    """The Markdown files the tables may be in, relative to ``repo``."""
    paths = [osp.join(repo, 'README.md')]
    for folder in ('configs', 'docs'):
        paths += glob.glob(
            osp.join(repo, folder, '**', '*.md'), recursive=True)
    return sorted(osp.relpath(p, repo) for p in paths if osp.isfile(p))


def expected(repo: str = REPO) -> Dict[str, str]:
    """Every generated file of ``repo`` (relative path) and its text as the
    table says it should read."""
    table = load_table(repo)
    files = {}
    for task, spec in table['tasks'].items():
        path = f'{spec["folder"]}/metafile.yml'
        with open(osp.join(repo, path), encoding='utf-8') as f:
            files[path] = metafile_text(table, task, f.read())
    for path in markdown_files(repo):
        with open(osp.join(repo, path), encoding='utf-8') as f:
            text = f.read()
        if MARKER.search(text):
            files[path] = fill_markers(table, text, path)
    return files


def out_of_date(repo: str = REPO) -> List[str]:
    """The generated files of ``repo`` that differ from the table."""
    stale = []
    for path, text in expected(repo).items():
        with open(osp.join(repo, path), encoding='utf-8') as f:
            if f.read() != text:
                stale.append(path)
    return stale


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; list the out-of-date files, exit 1 if any')
    args = parser.parse_args(argv)
    stale = out_of_date()
    if args.check:
        for path in stale:
            print(f'out of date: {path} (run tools/misc/seed_tables.py)')
        return 1 if stale else 0
    for path, text in expected().items():
        if path in stale:
            with open(osp.join(REPO, path), 'w', encoding='utf-8') as f:
                f.write(text)
            print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
