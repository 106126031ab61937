"""The seed's numbers are written once, in configs/seed_results.yml.

tools/misc/seed_tables.py writes them into the metafiles' Results and the
README tables between ``<!-- seed-table:NAME -->`` markers; these tests
fail while any of those files differs from the table, and while a config
comment restates one of the numbers.
"""
import glob
import os.path as osp
import re
import shutil

import pytest
import yaml
from distkd_testing import REPO, load_tool

seed_tables = load_tool('misc/seed_tables')


@pytest.fixture
def repo_copy(tmp_path):
    """The files the tool reads and writes, copied to a scratch folder."""
    for path in ['README.md', 'configs/seed_results.yml'] + glob.glob(
            'configs/*/*.md', root_dir=REPO) + glob.glob(
                'configs/*/metafile.yml', root_dir=REPO):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(osp.join(REPO, path), tmp_path / path)
    return tmp_path


def test_generated_files_match_the_seed_table():
    assert seed_tables.out_of_date() == []


def test_a_number_changed_in_the_table_only_is_found_and_rewritten(repo_copy):
    table = repo_copy / 'configs' / 'seed_results.yml'
    text = table.read_text()
    assert text.count('results: {DIST: 77.10}') == 1
    table.write_text(text.replace('{DIST: 77.10}', '{DIST: 77.11}'))
    stale = seed_tables.out_of_date(str(repo_copy))
    assert {'configs/mmseg/metafile.yml',
            'configs/mmseg/README.md'} <= set(stale)
    assert not any(
        p.endswith('metafile.yml')
        for p in stale if not p.startswith('configs/mmseg/'))
    for path, new in seed_tables.expected(str(repo_copy)).items():
        (repo_copy / path).write_text(new)
    assert seed_tables.out_of_date(str(repo_copy)) == []
    readme = (repo_copy / 'configs/mmseg/README.md').read_text()
    assert '74.21 -> **77.11** (78.07)' in readme
    meta = yaml.safe_load((repo_copy / 'configs/mmseg/metafile.yml').open())
    scores = {
        m['Name']: m['Results'][0]['Metrics']['mIoU']
        for m in meta['Models']
    }
    assert scores[
        'dist_deeplabv3-r101_deeplabv3-r18_8xb2-40k_cityscapes-512x1024'] \
        == 77.11


def test_markers_are_filled_with_links_relative_to_the_file():
    table = seed_tables.load_table()
    text = ('intro\n<!-- seed-table:cifar100 -->\nold rows\n'
            '<!-- /seed-table:cifar100 -->\nrest\n')
    front = seed_tables.fill_markers(table, text, 'README.md')
    inside = seed_tables.fill_markers(table, text, 'configs/mmpretrain/x.md')
    assert front.startswith('intro\n<!-- seed-table:cifar100 -->\n| ')
    assert front.endswith('|\n<!-- /seed-table:cifar100 -->\nrest\n')
    assert 'old rows' not in front
    name = 'dist_resnet56_resnet20_1xb64-240e_cifar100.py'
    assert f'[{name}](configs/mmpretrain/{name})' in front
    assert f'[{name}]({name})' in inside
    # Six rows, a header and its rule; the filled text fills the same.
    assert front.count('\n|') == 8
    assert seed_tables.fill_markers(table, front, 'README.md') == front
    assert seed_tables.fill_markers(table, 'no markers\n', 'a.md') == \
        'no markers\n'


def test_an_unknown_marker_names_the_tables():
    table = seed_tables.load_table()
    text = '<!-- seed-table:imagenet -->\n<!-- /seed-table:imagenet -->\n'
    with pytest.raises(ValueError, match='should be one of .*in1k-baseline'):
        seed_tables.fill_markers(table, text, 'README.md')


def test_every_shipped_config_has_one_seed_number():
    configs = sorted(
        osp.relpath(p, REPO) for task in ('mmpretrain', 'mmdet', 'mmseg')
        for p in glob.glob(osp.join(REPO, 'configs', task, '*.py')))
    results = seed_tables.config_results(seed_tables.load_table())
    assert sorted(results) == configs
    # The KD baselines carry the KD column, the DIST configs the DIST one.
    for path, entry in results.items():
        algorithm = osp.basename(path).split('_')[0]
        assert entry['method'] == {
            'dist': 'DIST',
            'kd': 'KD',
            'dist-mimic': 'DIST+mimic'
        }[algorithm], path


def test_a_config_given_two_numbers_is_refused():
    table = seed_tables.load_table()
    rows = table['tables']['coco']['rows']
    rows[1]['configs']['seed']['DIST'] = rows[0]['configs']['seed']['DIST']
    with pytest.raises(ValueError, match='should have one result'):
        seed_tables.config_results(table)


def test_no_config_comment_restates_a_seed_number():
    table = seed_tables.load_table()
    numbers = set()
    for spec in table['tables'].values():
        for row in spec.get('rows', []):
            values = [row['student']['score'], row['teacher']['score']]
            values += list(row['results'].values())
            values += list(row.get('zoo', {}).values())
            numbers |= {f'{v:.{spec["digits"]}f}' for v in values}
    found = []
    for path in glob.glob(
            osp.join(REPO, 'configs', '**', '*.py'), recursive=True):
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                comment = line.partition('#')[2]
                for number in re.findall(r'(?<![\d.])\d+\.\d+(?![\d.])',
                                         comment):
                    if number in numbers:
                        found.append(
                            f'{osp.relpath(path, REPO)}:{lineno}: {number}')
    assert found == []
