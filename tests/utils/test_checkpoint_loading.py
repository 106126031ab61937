"""Safe, cached checkpoint loading against a loopback HTTP server."""
import hashlib
import http.server
import os
import os.path as osp
import threading

import pytest
import torch
from distkd_testing import tiny_classifier, tiny_distiller
from mmengine.registry import MODELS
from mmengine.runner import CheckpointLoader

from distkd_mm.utils.checkpoint import cache_dir, load_untrusted


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the fixture's folder; /truncated/* stops half-way."""

    def do_GET(self):  # noqa: N802  (http.server's naming)
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if self.path.startswith('/truncated/'):
            body = b'x' * 1000
            self.send_response(200)
            self.send_header('Content-Length', str(10 * len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.connection.close()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A loopback server over tmp_path/served, and a private torch hub."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    served = tmp_path / 'served'
    served.mkdir()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    httpd.hits = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.root = served
    httpd.url = f'http://127.0.0.1:{httpd.server_address[1]}'
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def save_teacher(path, seed=0) -> dict:
    torch.manual_seed(seed)
    state = MODELS.build(tiny_classifier(8)).state_dict()
    torch.save({'state_dict': state}, str(path))
    return state


def sha256_prefix(path) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:8]


def test_url_teacher_downloads_once_and_then_uses_the_cache(server):
    state = save_teacher(server.root / 'teacher.pth')
    url = f'{server.url}/teacher.pth'
    for _ in range(2):
        model = MODELS.build(tiny_distiller(teacher_ckpt=url))
        assert torch.equal(model.teacher.head.fc.weight,
                           state['head.fc.weight'])
    assert server.hits == {'/teacher.pth': 1}
    assert osp.isfile(osp.join(cache_dir(), 'teacher.pth'))


def test_interrupted_download_leaves_nothing_in_the_cache(server):
    with pytest.raises(Exception):
        load_untrusted(f'{server.url}/truncated/teacher.pth')
    leftovers = os.listdir(cache_dir()) if osp.isdir(cache_dir()) else []
    assert 'teacher.pth' not in leftovers
    # The next try downloads again instead of trusting a partial file.
    with pytest.raises(Exception):
        load_untrusted(f'{server.url}/truncated/teacher.pth')
    assert server.hits['/truncated/teacher.pth'] == 2


def test_file_whose_name_carries_a_hash_is_verified(server):
    save_teacher(server.root / 'tmp.pth')
    good = f'teacher-{sha256_prefix(server.root / "tmp.pth")}.pth'
    os.rename(server.root / 'tmp.pth', server.root / good)
    (server.root / 'teacher-00000000.pth').write_bytes(
        (server.root / good).read_bytes())

    with pytest.raises(RuntimeError, match='(?i)hash'):
        load_untrusted(f'{server.url}/teacher-00000000.pth')
    assert not osp.exists(osp.join(cache_dir(), 'teacher-00000000.pth'))
    assert 'state_dict' in load_untrusted(f'{server.url}/{good}')
    assert osp.isfile(osp.join(cache_dir(), good))


def test_code_executing_pickle_from_a_url_is_refused_by_mmengine_too(
        server, tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:

        def __reduce__(self):
            return (open, (str(marker), 'w'))

    torch.save({
        'state_dict': {},
        'meta': Payload()
    }, str(server.root / 'evil.pth'))
    # The path MMEngine takes for `load_from` and backbone `init_cfg`.
    with pytest.raises(RuntimeError, match='Refused to load'):
        CheckpointLoader.load_checkpoint(f'{server.url}/evil.pth')
    assert not marker.exists()


def test_zoo_schemes_resolve_to_their_cached_download(server):
    # torchvision://resnet18 maps to torchvision's URL; a file already in
    # the cache under that name is used without any network.
    os.makedirs(cache_dir(), exist_ok=True)
    torch.save({'fc.weight': torch.ones(2)},
               osp.join(cache_dir(), 'resnet18-f37072fd.pth'))
    loaded = CheckpointLoader.load_checkpoint('torchvision://resnet18')
    assert torch.equal(loaded['fc.weight'], torch.ones(2))
    with pytest.raises(ValueError, match="Close names: \\['resnet18'"):
        load_untrusted('torchvision://resnet81')


def test_pretrained_package_config_takes_the_metafile_url(server):
    from distkd_mm.distillers.teacher import zoo_checkpoint
    config = 'mmpretrain::resnet/resnet34_8xb32_in1k.py'
    url = zoo_checkpoint(config)
    assert url.startswith('https://download.openmmlab.com/')
    assert url.endswith('resnet34_8xb32_in1k_20210831-f257d4e6.pth')
    with pytest.raises(ValueError, match="'pkg::path' teacher config"):
        zoo_checkpoint('configs/some_local_file.py')
    # With the file in the cache, the Distiller gets it with no network.
    from mmengine.registry import DefaultScope

    from distkd_mm.distillers.teacher import teacher_model_cfg
    model_cfg, scope = teacher_model_cfg(config)
    with DefaultScope.overwrite_default_scope(scope):
        r34 = MODELS.build(model_cfg)
    os.makedirs(cache_dir(), exist_ok=True)
    torch.save({'state_dict': r34.state_dict()},
               osp.join(cache_dir(), osp.basename(url)))
    model = MODELS.build(
        tiny_distiller(
            student=tiny_classifier(4, num_classes=1000),
            teacher=config,
            teacher_pretrained=True))
    assert torch.equal(model.teacher.head.fc.weight, r34.head.fc.weight)
