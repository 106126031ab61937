"""Secrets stay out: a URL's user-info and query string (a signed URL's
token) never reach the log, the dumped config or a checkpoint."""
import os

import pytest
import torch
from distkd_testing import (captured_logs, run_tool, save_teacher,
                            tiny_distiller, write_config)
from mmengine.config import Config
from mmengine.registry import MODELS

from distkd_mm.distillers.distiller import _teacher_source
from distkd_mm.utils.checkpoint import load_file, resume_globals
from distkd_mm.utils.urls import full_url, hide_url_secrets, redact_url


@pytest.mark.parametrize('url, shown', [
    ('https://user:pw@host/x.pth?token=abc', 'https://host/x.pth'),
    ('https://host:8443/a/x.pth?X-Amz-Signature=1&b=2#frag',
     'https://host:8443/a/x.pth'),
    ('http://tok@127.0.0.1:80/x.pth', 'http://127.0.0.1:80/x.pth'),
    ('https://host/x.pth', 'https://host/x.pth'),
    ('~/teachers/x.pth', '~/teachers/x.pth'),
    (None, None),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_hide_url_secrets_keeps_the_full_url_for_the_download():
    url = 'https://u:p@host/hide-test/x.pth?token=abc'
    tracking = 'https://u:p@mlflow.example/?token=t'
    cfg = Config(
        dict(
            model=dict(
                teacher_ckpt=url,
                student=dict(
                    init_cfg=dict(type='Pretrained', checkpoint=url))),
            load_from='/local/x.pth',
            visualizer=dict(vis_backends=[dict(tracking_uri=tracking)])))
    notes = hide_url_secrets(cfg)
    assert cfg.model.teacher_ckpt == 'https://host/hide-test/x.pth'
    assert cfg.model.student.init_cfg.checkpoint == cfg.model.teacher_ckpt
    assert cfg.load_from == '/local/x.pth'
    # Not a checkpoint: its reader needs it whole (and is not ours).
    assert cfg.visualizer.vis_backends[0].tracking_uri == tracking
    assert full_url('https://host/hide-test/x.pth') == url
    assert len(notes) == 1 and '`model.teacher_ckpt` holds a URL' in notes[0]
    assert 'abc' not in cfg.pretty_text
    clash = dict(
        a=dict(checkpoint='https://host/y.pth?v=1'),
        load_from='https://host/y.pth?v=2')
    with pytest.raises(
            ValueError,
            match='`load_from` and `a.checkpoint` should be URLs that differ '
            'in more than'):
        hide_url_secrets(clash)


def test_the_teacher_record_and_its_warning_hold_no_token():
    distiller = MODELS.build(tiny_distiller())
    assert _teacher_source(None, 'https://h/x.pth?token=new', False) == \
        'https://h/x.pth'
    with captured_logs() as records:
        # A checkpoint recorded before URLs were redacted.
        old = 'https://h/x.pth?token=old-secret'
        distiller.set_extra_state(
            torch.tensor(list(old.encode()), dtype=torch.uint8))
    text = '\n'.join(r.getMessage() for r in records)
    assert "TEACHER MISMATCH" in text and "'https://h/x.pth'" in text
    assert 'old-secret' not in text


@pytest.mark.slow
def test_a_token_url_reaches_no_log_config_or_checkpoint(
        server, imagenet_root, tmp_path):
    save_teacher(server.root / 'teacher.pth')
    shown = f'{server.url}/token/teacher.pth'
    work_dir = tmp_path / 'work'
    config = write_config(
        tmp_path / 'distill.py',
        imagenet_root,
        str(work_dir),
        tiny_distiller(teacher_ckpt=f'{shown}?token={server.token}'),
        1,
        log_level='INFO')

    run_tool('train', config)

    # The server answers 403 without the token: the run downloaded with it.
    assert server.hits == {f'/token/teacher.pth?token={server.token}': 1}
    files = [
        os.path.join(folder, name) for folder, _, names in os.walk(work_dir)
        for name in names
    ]
    logs = [f for f in files if f.endswith('.log')]
    dumped = [f for f in files if f.endswith('distill.py')]
    assert logs and dumped and (work_dir / 'epoch_1.pth').is_file()
    for path in files:
        assert server.token.encode() not in open(path, 'rb').read(), path
    log = open(logs[0]).read()
    assert f'Downloading {shown} (' in log  # the download is logged...
    assert f"teacher_ckpt='{shown}'" in log  # ...and the config text
    assert f"teacher_ckpt='{shown}'" in open(dumped[0]).read()
    checkpoint = load_file(
        str(work_dir / 'epoch_1.pth'), allowed=resume_globals())
    assert f"teacher_ckpt='{shown}'" in checkpoint['meta']['cfg']
    record = bytes(checkpoint['state_dict']['_extra_state'].tolist())
    assert record.decode() == shown

    # Testing it: the test run's log and dumped config hold no token.
    tested = tmp_path / 'tested'
    run_tool('test', config, str(work_dir / 'epoch_1.pth'), '--work-dir',
             str(tested))
    written = 0
    for folder, _, names in os.walk(tested):
        for name in names:
            path = os.path.join(folder, name)
            assert server.token.encode() not in open(path, 'rb').read(), path
            written += name.endswith(('.log', 'distill.py'))
    assert written >= 2
