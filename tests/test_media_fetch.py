from __future__ import annotations

import base64
import http.server
import socket
import threading
import time

import pytest

from generations.net.fetch import FetchError, fetch_image_bytes, is_public_address, parse_data_url

PAYLOAD = b"\x89PNG\r\n\x1a\n" + b"x" * 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        if self.path == "/image.png":
            self._send(PAYLOAD)
        elif self.path == "/big":
            self._send(b"x" * 50_000, length=False)
        elif self.path == "/declared-big":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "999999999")
            self.end_headers()
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            # One byte at a time, each well within any per-read timeout.
            for _ in range(40):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
        elif self.path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect-to/"))
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        else:
            self.send_error(404)

    def _send(self, body, length=True):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _fetch(url, allow=(), max_bytes=10_000, timeout=5.0):
    return fetch_image_bytes(url, max_bytes=max_bytes, timeout=timeout, allow_hosts=list(allow))


def _code(url, **kw):
    with pytest.raises(FetchError) as info:
        _fetch(url, **kw)
    assert info.value.message
    return info.value.code


def test_loopback_is_refused_without_the_allow_list_and_nothing_connects():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        assert _code(f"http://127.0.0.1:{port}/x") == "image_url_forbidden"
        assert _code(f"http://localhost:{port}/x") == "image_url_forbidden"
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()


def test_an_allow_listed_host_is_fetched(server):
    assert _fetch(f"{server}/image.png", allow=["127.0.0.1"]) == PAYLOAD
    assert _fetch(f"{server}/image.png", allow=["127.0.0.0/8"]) == PAYLOAD


def test_a_redirect_to_a_forbidden_host_is_refused(server):
    url = f"{server}/redirect-to/http://10.0.0.1/secret"
    assert _code(url, allow=["127.0.0.1"]) == "image_url_forbidden"
    allowed_hop = f"{server}/redirect-to/{server}/image.png"
    assert _fetch(allowed_hop, allow=["127.0.0.1"]) == PAYLOAD


def test_too_many_redirects_fail(server):
    assert _code(f"{server}/loop", allow=["127.0.0.1"]) == "image_fetch_failed"
    assert _Handler.hits.count("/loop") == 4


def test_the_size_cap_is_enforced_while_streaming_and_from_content_length(server):
    assert _code(f"{server}/big", allow=["127.0.0.1"]) == "image_too_large"
    assert _code(f"{server}/declared-big", allow=["127.0.0.1"]) == "image_too_large"


def test_a_slow_server_hits_the_overall_deadline(server):
    started = time.monotonic()
    assert _code(f"{server}/slow", allow=["127.0.0.1"], timeout=1.0) == "image_fetch_failed"
    assert time.monotonic() - started < 2.5


def test_http_errors_are_reported(server):
    assert _code(f"{server}/missing", allow=["127.0.0.1"]) == "image_fetch_failed"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)"],
)
def test_non_http_schemes_are_refused(url):
    assert _code(url) == "image_url_forbidden"


def test_credentials_in_urls_are_refused():
    assert _code("http://user:pw@example.com/a.png") == "image_url_forbidden"


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "[::1]",
        "0.0.0.0",
        "[::]",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "017700000001",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:169.254.169.254]",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "224.0.0.1",
        "[fe80::1]",
        "[fc00::1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
    ],
)
def test_private_and_odd_addresses_are_refused_before_connecting(host):
    assert _code(f"http://{host}/image.png") == "image_url_forbidden"


def test_public_hosts_on_other_ports_are_refused():
    assert _code("http://93.184.216.34:8080/a.png") == "image_url_forbidden"


def test_public_address_rules():
    import ipaddress

    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public_address(ipaddress.ip_address("::ffff:10.1.2.3"))


def test_data_urls_are_decoded_and_capped():
    encoded = base64.b64encode(PAYLOAD).decode()
    assert parse_data_url(f"data:image/png;base64,{encoded}", max_bytes=10_000) == PAYLOAD
    assert _fetch(f"data:image/png;base64,{encoded}") == PAYLOAD
    with pytest.raises(FetchError) as info:
        parse_data_url(f"data:image/png;base64,{encoded}", max_bytes=100)
    assert info.value.code == "image_too_large"
    with pytest.raises(FetchError):
        parse_data_url("data:text/html;base64,PGgxPg==", max_bytes=100)
    with pytest.raises(FetchError):
        parse_data_url("data:image/png;base64,@@@@", max_bytes=100)
