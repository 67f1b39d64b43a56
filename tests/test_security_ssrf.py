"""SSRF: no image URL or webhook URL reaches a private address, in any spelling.

A real listener on loopback (v4 and v6) counts the connections it accepts, and every socket
connect the process attempts during an attack is recorded: both must stay at zero while
VIDEOGEN_FETCH_ALLOW_HOSTS is empty. Names that resolve to private addresses are made with a
patched resolver (no internet here), only for those names."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from generations.core import webhooks
from generations.errors import ApiError
from generations.models import Generation, WebhookDelivery
from generations.net import fetch
from tests.conftest import Account

PRIVATE_NAMES = {
    "localtest.me": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "intranet.test": ["10.1.2.3"],
    "router.test": ["192.168.0.1"],
    "cgnat.test": ["100.64.0.9"],
    "v6local.test": ["::1"],
    "ula.test": ["fd00::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "rebind.test": ["93.184.216.34", "127.0.0.1"],  # one private answer is enough to refuse
}
PUBLIC_NAME = "images.example.test"  # resolves to a public address nothing listens on


class Listener:
    """Accepts and counts connections on a loopback port until closed."""

    def __init__(self, family: socket.AddressFamily, host: str) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener(socket.AF_INET, "127.0.0.1")
    yield found
    found.close()


@pytest.fixture
def listener6() -> Iterator[Listener | None]:
    try:
        found = Listener(socket.AF_INET6, "::1")
    except OSError:
        yield None  # no IPv6 loopback in this sandbox: the v6 URLs are still refused
        return
    yield found
    found.close()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address the process tries to connect to while the test runs."""
    seen: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        seen.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen


@pytest.fixture(autouse=True)
def resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        answers = PRIVATE_NAMES.get(name) or (["93.184.216.34"] if name == PUBLIC_NAME else None)
        if answers is None:
            return real(host, port, *args, **kwargs)
        out: list[Any] = []
        for address in answers:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def attack_urls(port: int, port6: int) -> list[str]:
    p = port
    return [
        # loopback v4 and v6, the unspecified address, cloud metadata
        f"http://127.0.0.1:{p}/", "http://127.0.0.1/", f"http://localhost:{p}/",
        f"http://[::1]:{port6}/", "http://[::1]/", f"http://0.0.0.0:{p}/", "http://0.0.0.0/",
        f"http://[::]:{port6}/", "http://169.254.169.254/latest/meta-data/",
        # private ranges (RFC 1918, CGNAT, ULA, link-local)
        "http://10.0.0.1/", "http://172.16.0.1/", "http://172.31.255.254/",
        "http://192.168.1.1/", "http://100.64.0.1/", "http://[fc00::1]/", "http://[fd12::1]/",
        "http://[fe80::1]/", "http://[fe80::1%25lo]/",
        # IPv4 inside IPv6
        f"http://[::ffff:127.0.0.1]:{p}/", "http://[::ffff:7f00:1]/",
        "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/",
        # other spellings of 127.0.0.1 that resolvers accept
        f"http://2130706433:{p}/", "http://2130706433/", f"http://0177.0.0.1:{p}/",
        "http://0177.0.0.1/", f"http://0x7f.0.0.1:{p}/", "http://0x7f.0.0.1/",
        "http://0x7f000001/", f"http://127.1:{p}/", "http://127.1/", "http://127.0.1/",
        "http://017700000001/", "http://127.0.0.1./", "http://LOCALHOST/",
        # names that resolve to private addresses
        *(f"http://{name}:{p}/" for name in PRIVATE_NAMES),
        *(f"https://{name}/" for name in PRIVATE_NAMES),
        # schemes other than http(s)
        "file:///etc/passwd", "gopher://127.0.0.1:70/_x", f"ftp://127.0.0.1:{p}/a.png",
        "dict://127.0.0.1:11211/stat", "ldap://127.0.0.1/", "javascript:alert(1)",
        "//127.0.0.1/a.png",
        # odd ports on a public name and a public address (only 80/443 are allowed)
        f"http://{PUBLIC_NAME}:22/", f"http://{PUBLIC_NAME}:6379/", f"http://{PUBLIC_NAME}:8080/",
        f"https://{PUBLIC_NAME}:80/", f"http://{PUBLIC_NAME}:443/", "http://93.184.216.34:25/",
        f"http://{PUBLIC_NAME}:0/", f"http://{PUBLIC_NAME}:99999/",
        # credentials (a classic parser-confusion vector)
        f"http://{PUBLIC_NAME}@127.0.0.1:{p}/", f"http://user:pw@{PUBLIC_NAME}/",
    ]  # fmt: skip


def _listeners(listener: Listener, listener6: Listener | None) -> tuple[int, int]:
    return listener.port, listener6.port if listener6 else listener.port


def test_no_attack_url_is_fetched_and_nothing_connects(
    listener: Listener, listener6: Listener | None, connects: list[Any], settings: Any
) -> None:
    settings.VIDEOGEN_FETCH_ALLOW_HOSTS = []
    for url in attack_urls(*_listeners(listener, listener6)):
        with pytest.raises(fetch.FetchError) as info:
            fetch.fetch_image_bytes(url, max_bytes=10_000, timeout=3.0, allow_hosts=[])
        assert info.value.code in ("image_url_forbidden", "image_fetch_failed"), url
        assert info.value.message, url
    assert connects == []
    assert listener.accepted == 0
    assert listener6 is None or listener6.accepted == 0


def test_each_attack_is_a_400_naming_image_url_through_the_api(
    owner: Account, listener: Listener, listener6: Listener | None, connects: list[Any]
) -> None:
    api = owner.client()
    for url in attack_urls(*_listeners(listener, listener6)):
        response = api.post(
            "/api/v1/generate", {"model": "local", "prompt": "a cat", "image_url": url}
        )
        assert response.status_code == 400, url
        error = response.json()["error"]
        assert error["field"] == "image_url", url
        codes = ("image_url_forbidden", "image_fetch_failed", "invalid_parameter")
        assert error["code"] in codes, (url, error)
        assert error["message"]
    assert not Generation.objects.exists()
    assert connects == [] and listener.accepted == 0


class _Redirector(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.path.removeprefix("/to/"))
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    # Reached by a name that only the test allow-lists (PRIVATE_NAMES does not hold it).
    yield f"http://redirector.test:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_redirects_to_any_attack_url_are_refused(
    redirector: str,
    listener: Listener,
    listener6: Listener | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "redirector.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    targets = [
        u
        for u in attack_urls(*_listeners(listener, listener6))
        if not u.startswith(("javascript:", "//"))
    ]
    for target in targets:
        with pytest.raises(fetch.FetchError) as info:
            fetch.fetch_image_bytes(
                f"{redirector}/to/{target}",
                max_bytes=10_000,
                timeout=3.0,
                allow_hosts=["redirector.test"],  # only the first hop's name is trusted
            )
        assert info.value.code in ("image_url_forbidden", "image_fetch_failed"), target
    assert listener.accepted == 0
    assert listener6 is None or listener6.accepted == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook", "http://[::1]/hook", "http://0.0.0.0/hook",
        "http://169.254.169.254/hook", "http://10.0.0.1/hook", "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook", "http://2130706433/hook", "http://0x7f.0.0.1/hook",
        "http://0177.0.0.1/hook", "http://127.1/hook", "http://hooks.example.com:6379/hook",
        "http://user:pw@hooks.example.com/hook", "file:///etc/passwd", "gopher://x/",
    ],
)  # fmt: skip
def test_webhook_urls_on_private_addresses_are_refused_when_given(url: str) -> None:
    with pytest.raises(ApiError) as info:
        webhooks.validate_url(url)
    assert info.value.status == 400 and info.value.field == "webhook_url"
    assert "webhook_url" in info.value.message


def test_webhook_urls_are_refused_through_the_api(owner: Account) -> None:
    response = owner.client().post(
        "/api/v1/generate",
        {"model": "local", "prompt": "x", "webhook_url": "http://169.254.169.254/latest"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "webhook_url"


def test_allow_listed_webhook_hosts_and_public_ones_pass_validation(settings: Any) -> None:
    assert webhooks.validate_url("https://hooks.example.com/x") == "https://hooks.example.com/x"
    settings.VIDEOGEN_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    assert webhooks.validate_url("http://127.0.0.1:9999/x") == "http://127.0.0.1:9999/x"


def test_webhook_delivery_to_a_name_resolving_private_reaches_nothing(
    owner: Account, listener: Listener, connects: list[Any], settings: Any
) -> None:
    settings.VIDEOGEN_FETCH_ALLOW_HOSTS = []
    owner.client().post("/api/v1/generate", {"model": "local", "prompt": "x", "duration": 1})
    gen = Generation.objects.get()  # queued only: its task is never run in this test
    for url in (f"http://localtest.me:{listener.port}/hook", "http://rebind.test/hook"):
        delivery = WebhookDelivery.objects.create(
            team=owner.team, generation=gen, message_id=f"msg_{len(url)}",
            event="generation.completed", url=url, payload={"x": 1},
        )  # fmt: skip
        assert webhooks.deliver(delivery.pk) == "will retry"
        delivery.refresh_from_db()
        assert "private or reserved" in delivery.last_error
        assert delivery.last_status_code is None
    assert connects == [] and listener.accepted == 0


def test_the_fetcher_connects_to_the_address_it_vetted_not_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch, connects: list[Any]
) -> None:
    # DNS rebinding: the first answer is public, any later one private. One lookup only.
    answers = iter([[("93.184.216.34", 80)], [("127.0.0.1", 80)]])

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a, _ in next(answers)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(fetch, "CONNECT_TIMEOUT", 0.2)  # 93.184.216.34 is unreachable here
    with pytest.raises(fetch.FetchError):
        fetch.fetch_image_bytes("http://flip.test/a.png", max_bytes=100, timeout=1.0)
    assert [address[0] for address in connects] == ["93.184.216.34"]


def test_the_port_policy_is_stated_in_the_refusal() -> None:
    with pytest.raises(fetch.FetchError) as info:
        fetch.check_url(f"http://{PUBLIC_NAME}:8080/")
    assert "default port (80)" in info.value.message
    fetch.check_url(f"http://{PUBLIC_NAME}:8080/", allow_hosts=[PUBLIC_NAME])
    fetch.check_url(f"https://{PUBLIC_NAME}/a.png")


def test_refusals_are_json_that_names_the_field(owner: Account) -> None:
    response = owner.client().post(
        "/api/v1/generate", {"model": "local", "prompt": "x", "image_url": "http://127.1/"}
    )
    body = json.loads(response.content)
    assert body["success"] is False and body["error"]["field"] == "image_url"
