"""A loopback HTTP server that serves checkpoints well and badly."""
import base64
import gzip
import http.server
import os
import subprocess
import threading
import time
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

USER, PASSWORD = 'user', 'pw'


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the fixture's folder, plus routes that misbehave:

    ``/drop-cl/<file>``: announces the full Content-Length, sends half.
    ``/drop-nocl/<file>``: no Content-Length, sends half, closes.
    ``/nocl/<file>``: no Content-Length, sends the whole file.
    ``/crawl/<file>``: the full Content-Length, one byte per
    ``server.crawl_delay`` (0.2) seconds: slow by design, whatever the
    machine.
    ``/stall/<file>``: the full Content-Length, 1 KiB, then nothing until
    the test ends.
    ``/slow-headers/<file>``: the status line, then one byte of a header
    per ``server.crawl_delay`` seconds (50 of them), then the file.
    ``/gzip/<file>``, ``/deflate/<file>``, ``/raw-deflate/<file>``: the
    file with that Content-Encoding; ``/br/<file>``: the file, labelled
    ``br``.
    ``/redirect/<path>``: 302 to ``/<path>``; ``/redirect-file/<x>``: 302
    to ``file:///etc/hostname``.
    ``/token/<file>?token=T``: the file if T is ``server.token``, else 403.
    ``/auth/<file>``: the file with basic auth ``user:pw``, else 401.
    """

    def do_GET(self):  # noqa: N802  (http.server's naming)
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        self.server.request_headers.append(dict(self.headers))
        url = urlsplit(self.path)
        route, _, rest = url.path.lstrip('/').partition('/')
        handler = getattr(self, '_' + route.replace('-', '_'), None)
        if handler is not None and rest:
            handler(rest, parse_qs(url.query))
            return
        super().do_GET()

    def _body(self, rest):
        return (self.server.root / rest).read_bytes()

    def _send(self, body, length=True, **headers):
        self.send_response(200)
        if length:
            self.send_header('Content-Length', str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace('_', '-'), value)
        self.end_headers()

    def _drop_cl(self, rest, query):
        body = self._body(rest)
        self._send(body)
        self._finish(body[:len(body) // 2])

    def _drop_nocl(self, rest, query):
        body = self._body(rest)
        self._send(body, length=False)
        self._finish(body[:len(body) // 2])

    def _nocl(self, rest, query):
        body = self._body(rest)
        self._send(body, length=False)
        self._finish(body)

    def _finish(self, data):
        self.wfile.write(data)
        self.wfile.flush()
        self.connection.close()

    def _crawl(self, rest, query):
        body = self._body(rest)
        self._send(body)
        try:
            for i in range(len(body)):
                if self.server.release.is_set():
                    break
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(self.server.crawl_delay)
        except OSError:
            pass  # the client gave up: what the test wants

    def _stall(self, rest, query):
        body = self._body(rest)
        self._send(body)
        try:
            self.wfile.write(body[:1024])
            self.wfile.flush()
            self.server.release.wait(60)
        except OSError:
            pass

    def _slow_headers(self, rest, query):
        body = self._body(rest)
        try:
            self.wfile.write(b'HTTP/1.1 200 OK\r\nX-Slow: ')
            for _ in range(50):
                if self.server.release.is_set():
                    return
                self.wfile.write(b'x')
                self.wfile.flush()
                time.sleep(self.server.crawl_delay)
            self.wfile.write(b'\r\nContent-Length: %d\r\n\r\n' % len(body))
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up: what the test wants

    def _gzip(self, rest, query):
        self._encoded(rest, gzip.compress(self._body(rest)), 'gzip')

    def _deflate(self, rest, query):
        self._encoded(rest, zlib.compress(self._body(rest)), 'deflate')

    def _raw_deflate(self, rest, query):
        packer = zlib.compressobj(wbits=-15)
        data = packer.compress(self._body(rest)) + packer.flush()
        self._encoded(rest, data, 'deflate')

    def _br(self, rest, query):
        self._encoded(rest, self._body(rest), 'br')

    def _encoded(self, rest, data, encoding):
        self._send(data, Content_Encoding=encoding)
        self.wfile.write(data)

    def _redirect(self, rest, query):
        self.send_response(302)
        self.send_header('Location', '/' + rest)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def _redirect_file(self, rest, query):
        self.send_response(302)
        self.send_header('Location', 'file:///etc/hostname')
        self.send_header('Content-Length', '0')
        self.end_headers()

    def _token(self, rest, query):
        if query.get('token') != [self.server.token]:
            self.send_error(403)
            return
        body = self._body(rest)
        self._send(body)
        self.wfile.write(body)

    def _auth(self, rest, query):
        wanted = base64.b64encode(f'{USER}:{PASSWORD}'.encode()).decode()
        if self.headers.get('Authorization') != f'Basic {wanted}':
            self.send_error(401)
            return
        body = self._body(rest)
        self._send(body)
        self.wfile.write(body)

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
    httpd.request_headers = []
    httpd.root = served
    httpd.token = 'tok-5ecret-9f3a'
    httpd.crawl_delay = 0.2
    httpd.release = threading.Event()
    # A short poll: shutdown() at teardown waits for one.
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.02, ), daemon=True)
    thread.start()
    httpd.url = f'http://127.0.0.1:{httpd.server_address[1]}'
    yield httpd
    httpd.release.set()  # ends the stalled and crawling answers
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 KiB tmpfs, where the machine allows mounting one."""
    mount = tmp_path / 'tiny_disk'
    mount.mkdir()
    try:
        subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs',
             str(mount)],
            check=True,
            capture_output=True,
            timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, 'stderr', b'') or str(err)
        if isinstance(detail, bytes):
            detail = detail.decode(errors='replace')
        pytest.skip(f'cannot mount a tmpfs here (needs root or '
                    f'CAP_SYS_ADMIN): {detail.strip()}')
    try:
        yield mount
    finally:
        subprocess.run(['umount', str(mount)], capture_output=True)
        if os.path.ismount(str(mount)):
            subprocess.run(['umount', '-l', str(mount)], capture_output=True)
