"""Downloading user-supplied image URLs without becoming a proxy into the private network.

Every connection resolves its host, refuses it unless every resolved address is public (or
allow-listed by the operator) and then connects to exactly the address it vetted: there is
no second lookup an attacker's DNS could answer differently. TLS still verifies the
certificate and sends SNI for the host name. Redirects are followed by hand, each hop vetted
again. The body is streamed under a byte cap and one wall-clock deadline for the whole fetch.

Kept hand-written on purpose: no maintained library checks all of this, together and at
connect time: every spelling of an address (decimal, octal, hex and short IPv4; IPv4 inside
IPv6 through mapping, NAT64, 6to4 and Teredo), every redirect hop, and every address the DNS
answered, then connects to that vetted address rather than to the name.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

MAX_REDIRECTS = 3
DEFAULT_PORTS = {"http": 80, "https": 443}
READ_CHUNK = 64 * 1024
# Longest time any single connect may take, inside the overall deadline.
CONNECT_TIMEOUT = 10.0
USER_AGENT = "videogen-image-fetch/1.0"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DATA_URL = re.compile(r"^data:(?P<mime>[^;,]*)(?P<params>(;[^;,]*)*),(?P<payload>.*)$", re.S)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# NAT64 prefixes (RFC 6052, RFC 8215) embed an IPv4 address in their last 32 bits.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


class FetchError(Exception):
    """A URL that could not be used; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _forbidden(message: str) -> FetchError:
    return FetchError("image_url_forbidden", message)


def _failed(message: str) -> FetchError:
    return FetchError("image_fetch_failed", message)


def human_size(num_bytes: int) -> str:
    """'25 MB', '1.5 MB', '300 KB': sizes as people read them in error messages."""
    if num_bytes >= 1_048_576:
        return f"{num_bytes / 1_048_576:.3g} MB"
    if num_bytes >= 1024:
        return f"{num_bytes / 1024:.3g} KB"
    return f"{num_bytes} bytes"


def _too_large(max_bytes: int) -> FetchError:
    return FetchError(
        "image_too_large", f"The image is larger than the {human_size(max_bytes)} limit."
    )


def is_public_address(ip: IPAddress) -> bool:
    """True when `ip` is globally reachable, including inside IPv6 wrappers around IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip in _NAT64_LOCAL_USE:
            return False
        if ip in _NAT64_WELL_KNOWN:
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
        if ip.teredo is not None:
            server, client = ip.teredo
            if not (is_public_address(server) and is_public_address(client)):
                return False
        if ip.is_site_local:
            return False
    return bool(
        ip.is_global
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
    )


def parse_allow_hosts(value: str | Iterable[str]) -> list[str]:
    """Split a comma list (the VIDEOGEN_FETCH_ALLOW_HOSTS setting) into clean entries."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip().lower() for item in items if item.strip()]


@dataclass(frozen=True)
class _Policy:
    host_names: frozenset[str]
    networks: tuple[IPNetwork, ...]
    deadline: _Deadline

    @classmethod
    def build(cls, allow_hosts: Iterable[str], deadline: _Deadline) -> _Policy:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in parse_allow_hosts(list(allow_hosts)):
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks), deadline)

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.host_names

    def address_allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)

    def vet(self, host: str, port: int, default_port: int, addresses: list[IPAddress]) -> None:
        """Raise unless every address may be reached on this port."""
        if not addresses:
            raise _failed("The image host name does not resolve to any address.")
        by_name = self.name_allowed(host)
        listed = by_name or all(self.address_allowed(ip) for ip in addresses)
        if not listed:
            for ip in addresses:
                if not is_public_address(ip):
                    raise _forbidden("The image URL points to a private or reserved address.")
            if port != default_port:
                raise _forbidden(
                    f"Image URLs must use the default port ({default_port}) for their scheme."
                )


class _Deadline:
    """One wall-clock limit for a whole fetch; closes its sockets when it passes.

    Per-call socket timeouts cannot stop a server that trickles a byte at a time, so a
    timer shuts the registered sockets down, which wakes any blocked read at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0 or self.expired:
            raise self.error()
        return left

    def error(self) -> FetchError:
        return _failed(f"The image download took longer than {self.seconds:g} seconds.")

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                sock.close()
                raise self.error()
            self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # already closed: nothing to wake
                    sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _resolve(host: str, port: int, deadline: _Deadline) -> list[tuple[Any, ...]]:
    """getaddrinfo bounded by the deadline (the resolver has no timeout of its own)."""
    result: list[list[tuple[Any, ...]]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)

    worker = threading.Thread(target=work, daemon=True, name="image-fetch-resolve")
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        raise deadline.error()
    if failure:
        if isinstance(failure[0], OSError):
            raise _failed("The image host name could not be resolved.")
        raise failure[0]
    return result[0]


def _guarded_connect(conn: HTTPConnection, policy: _Policy, default_port: int) -> socket.socket:
    host = conn._dns_host  # the host without brackets or a trailing dot
    port = int(conn.port or default_port)
    infos = _resolve(host, port, policy.deadline)
    addresses: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]
        addresses.append(ipaddress.ip_address(raw))
    policy.vet(host, port, default_port, addresses)
    last_error: OSError | None = None
    for family, socktype, proto, _canon, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            policy.deadline.register(sock)
            for opt in conn.socket_options or ():
                sock.setsockopt(*opt)
            sock.settimeout(min(CONNECT_TIMEOUT, policy.deadline.remaining()))
            # Connect to the address just vetted, never to the name again.
            sock.connect(sockaddr)
            sock.settimeout(policy.deadline.remaining())
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    if policy.deadline.expired:
        raise policy.deadline.error()
    if isinstance(last_error, TimeoutError | socket.timeout):
        raise _failed("The image host did not accept a connection in time.")
    raise _failed("Could not connect to the image host.")


class _GuardedHTTPConnection(HTTPConnection):
    def __init__(self, *args: Any, policy: _Policy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._policy = policy

    def _new_conn(self) -> socket.socket:
        return _guarded_connect(self, self._policy, DEFAULT_PORTS["http"])


class _GuardedHTTPSConnection(HTTPSConnection):
    # HTTPSConnection.connect() wraps what _new_conn returns in TLS using self.host for
    # SNI and certificate matching, so only the TCP step needs replacing.
    def __init__(self, *args: Any, policy: _Policy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._policy = policy

    def _new_conn(self) -> socket.socket:
        return _guarded_connect(self, self._policy, DEFAULT_PORTS["https"])


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


@dataclass
class _Target:
    scheme: str
    host: str
    port: int
    path: str


def _parse_target(url: str) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise _failed("The image URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _forbidden("Image URLs must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise _forbidden("Image URLs must not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _failed("The image URL has no host name.")
    try:
        # Internationalised names go over the wire in their ASCII (punycode) form.
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _failed("The image URL's host name is not valid.") from None
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # An explicit ":0" is not the default port (urllib3 would connect to 80 for it).
    return _Target(scheme, host, DEFAULT_PORTS[scheme] if port is None else port, path)


def _precheck_literal(target: _Target, policy: _Policy) -> None:
    # Literal IPs can be judged without any lookup; names are judged at connect time.
    ip = literal_address(target.host)
    if ip is not None:
        policy.vet(target.host, target.port, DEFAULT_PORTS[target.scheme], [ip])


def literal_address(host: str) -> IPAddress | None:
    """The address a host spells literally, legacy IPv4 forms included (`2130706433`,
    `0177.0.0.1`, `0x7f.1`, `127.1`, which resolvers and browsers accept), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, *, allow_hosts: Iterable[str] = ()) -> None:
    """Refuse what can be judged without the network: the scheme, credentials, the port and
    a literal address (in any spelling). Names are judged again at every connect.

    Port policy: only the scheme's default port (80 for http, 443 for https) unless the host
    is allow-listed; internal services listen on odd ports, public image hosts do not."""
    deadline = _Deadline(CONNECT_TIMEOUT)
    try:
        _precheck(_parse_target(url), _Policy.build(allow_hosts, deadline))
    finally:
        deadline.cancel()


def _precheck(target: _Target, policy: _Policy) -> None:
    _precheck_literal(target, policy)
    default_port = DEFAULT_PORTS[target.scheme]
    if target.port != default_port and not policy.name_allowed(target.host):
        ip = literal_address(target.host)
        if ip is None or not policy.address_allowed(ip):
            raise _forbidden(f"URLs must use the default port ({default_port}) for their scheme.")


def fetch_image_bytes(
    url: str, *, max_bytes: int, timeout: float, allow_hosts: Iterable[str] = ()
) -> bytes:
    """Download an image URL (http, https, or a data: URL) under the rules in the docstring.

    Raises FetchError with code `image_url_forbidden`, `image_fetch_failed` or
    `image_too_large`.
    """
    if url.strip()[:5].lower() == "data:":
        return parse_data_url(url, max_bytes=max_bytes)
    deadline = _Deadline(timeout)
    try:
        policy = _Policy.build(allow_hosts, deadline)
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            target = _parse_target(current)
            _precheck(target, policy)
            location = _get(target, policy, max_bytes)
            if isinstance(location, bytes):
                return location
            current = urljoin(current, location)
        raise _failed(f"The image URL redirected more than {MAX_REDIRECTS} times.")
    finally:
        deadline.cancel()


def _pool(target: _Target, policy: _Policy) -> HTTPConnectionPool:
    pool_cls = _GuardedHTTPSPool if target.scheme == "https" else _GuardedHTTPPool
    left = policy.deadline.remaining()
    return pool_cls(
        target.host,
        target.port,
        maxsize=1,
        retries=False,
        timeout=urllib3.Timeout(connect=min(CONNECT_TIMEOUT, left), read=left),
        policy=policy,
    )


@contextmanager
def _errors_translated(deadline: _Deadline) -> Iterator[None]:
    """urllib3 and socket errors become FetchErrors a user can read."""
    try:
        yield
    except FetchError:
        raise
    except HTTPError as exc:
        raise _translate(exc, deadline) from None
    except OSError:
        if deadline.expired:
            raise deadline.error() from None
        raise _failed("The connection to the host failed.") from None


def _get(target: _Target, policy: _Policy, max_bytes: int) -> bytes | str:
    """One request: the body, or the Location of a redirect."""
    pool = _pool(target, policy)
    try:
        with _errors_translated(policy.deadline):
            response = pool.urlopen(
                "GET",
                target.path,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "image/*",
                    # Compressed bodies could expand past the cap before we count them.
                    "Accept-Encoding": "identity",
                },
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
            )
            try:
                return _read_response(response, policy.deadline, max_bytes)
            finally:
                response.release_conn()
                response.close()
    finally:
        pool.close()


def _translate(exc: HTTPError, deadline: _Deadline) -> FetchError:
    # Our own FetchError may arrive wrapped by urllib3; unwrap it to keep its message.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FetchError):
            return seen
        seen = getattr(seen, "reason", None) or seen.__cause__ or seen.__context__
    if deadline.expired:
        return deadline.error()
    if isinstance(exc, SSLError):
        return _failed("The image host's TLS certificate could not be verified.")
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return _failed("The image host took too long to answer.")
    if isinstance(exc, NameResolutionError):
        return _failed("The image host name could not be resolved.")
    if isinstance(exc, NewConnectionError):
        return _failed("Could not connect to the image host.")
    return _failed("The image host sent an invalid or incomplete response.")


def _read_response(response: Any, deadline: _Deadline, max_bytes: int) -> bytes | str:
    status = int(response.status)
    if status in _REDIRECT_STATUSES:
        location = response.headers.get("Location")
        if not location:
            raise _failed(f"The image URL answered HTTP {status} without a Location.")
        return str(location)
    if status != 200:
        raise _failed(f"The image URL answered HTTP {status}.")
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _failed("The image host sent a compressed response, which is not accepted.")
    ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype.startswith("text/"):
        raise _failed(f"The image URL returned {ctype}, not an image.")
    length = response.headers.get("Content-Length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise _failed("The image host sent an invalid Content-Length.") from None
        if declared > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    while True:
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(deadline.remaining())
        else:
            deadline.remaining()
        # read1 returns after one socket read, so the deadline is checked between reads.
        chunk = response.read1(READ_CHUNK)
        if not chunk:
            break
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    if deadline.expired:
        raise deadline.error()
    if length is not None and received != int(length):
        raise _failed("The image download was cut short.")
    if not received:
        raise _failed("The image URL returned an empty body.")
    return b"".join(chunks)


def parse_data_url(url: str, *, max_bytes: int) -> bytes:
    """Decode `data:image/...;base64,...`, refusing oversized payloads before decoding."""
    match = _DATA_URL.match(url.strip())
    if match is None:
        raise _failed("The data: URL is malformed.")
    mime = match["mime"].strip().lower()
    params = [p.strip().lower() for p in match["params"].split(";") if p.strip()]
    if mime and not mime.startswith("image/"):
        raise _failed(f"The data: URL holds {mime}, not an image.")
    payload = match["payload"]
    if "base64" in params:
        compact = re.sub(r"\s+", "", unquote_to_bytes(payload).decode("ascii", "replace"))
        # 4 base64 characters carry 3 bytes: refuse before decoding anything big.
        if (len(compact) // 4) * 3 - 2 > max_bytes:
            raise _too_large(max_bytes)
        try:
            data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise _failed("The data: URL's base64 payload is invalid.") from None
    else:
        if len(payload) > max_bytes * 3:
            raise _too_large(max_bytes)
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise _failed("The data: URL is empty.")
    return data


def post_json(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout: float,
    allow_hosts: Iterable[str] = (),
) -> int:
    """POST a JSON body under the same address rules as image fetching (webhooks).

    Redirects are not followed (a 3xx is returned as the status). Returns the HTTP status;
    raises FetchError when the URL is forbidden or the connection fails."""
    deadline = _Deadline(timeout)
    try:
        policy = _Policy.build(allow_hosts, deadline)
        target = _parse_target(url)
        _precheck(target, policy)
        pool = _pool(target, policy)
        try:
            with _errors_translated(deadline):
                response = pool.urlopen(
                    "POST", target.path, body=body, redirect=False, retries=False,
                    headers={"User-Agent": USER_AGENT, "Content-Type": "application/json",
                             **headers},
                    preload_content=False,
                )  # fmt: skip
                try:
                    response.read(64 * 1024)  # drain a little; the body is not used
                    return int(response.status)
                finally:
                    response.release_conn()
                    response.close()
        finally:
            pool.close()
    finally:
        deadline.cancel()
