"""A loopback HTTP server that serves checkpoints well and badly."""
import http.server
import threading

import pytest


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the fixture's folder, plus routes that misbehave:

    ``/drop-cl/<file>``: announces the full Content-Length, sends half.
    ``/drop-nocl/<file>``: no Content-Length, sends half, closes.
    ``/nocl/<file>``: no Content-Length, sends the whole file.
    """

    def do_GET(self):  # noqa: N802  (http.server's naming)
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        route, _, rest = self.path.lstrip('/').partition('/')
        if route in ('drop-cl', 'drop-nocl', 'nocl'):
            body = (self.server.root / rest).read_bytes()
            self.send_response(200)
            if route == 'drop-cl':
                self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body if route == 'nocl' else body[:len(body) //
                                                               2])
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
    httpd.root = served
    # A short poll: shutdown() at teardown waits for one.
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.02, ), daemon=True)
    thread.start()
    httpd.url = f'http://127.0.0.1:{httpd.server_address[1]}'
    yield httpd
    httpd.shutdown()
    httpd.server_close()
