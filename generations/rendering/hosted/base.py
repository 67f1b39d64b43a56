"""Remote engines: hosted providers that run the model while we poll.

A remote engine never renders in the worker. `submit` hands the job to the provider and
returns a handle (a small JSON-able dict stored on the generation); `poll` asks how it is
going and answers :class:`Pending` or :class:`Done`, or raises an :class:`EngineError` for a
job the provider failed or refused; `cancel` asks the provider to stop. The worker does one
of these calls per short task and re-enqueues the next poll with backoff (see
`generations.tasks.dispatch`), so no worker ever sleeps on a provider.

Errors come in two kinds, and the distinction decides whether a generation survives a bad
minute upstream: :class:`Transient` (connection errors, timeouts, 5xx, 429, malformed
responses) is retried with backoff until the model's deadline; :class:`EngineError`
(validation, content policy, bad credentials) fails the generation at once with the
provider's reason.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import requests

from generations.rendering.base import EngineError

if TYPE_CHECKING:
    from generations.rendering.hosted.routes import Job

log = logging.getLogger(__name__)

# Per HTTP call: (connect, read) seconds. Provider calls are small JSON exchanges.
CALL_TIMEOUT = (5.0, 30.0)
# Status codes that mean "try again later" whatever the provider.
TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# How much of an upstream error body we keep in messages and logs.
MAX_REASON_CHARS = 300


class Transient(Exception):  # noqa: N818  (a condition, not a bug)
    """Worth retrying later; `retry_after` is the provider's own hint in seconds, if any.
    `resubmit`: the upstream job itself failed in a way the provider calls retryable, so
    the retry is a new submission (a bounded number of times), not another poll.
    `status`: the HTTP status that said so, when one did (429: a rate limit, which failover
    waits out a few times before moving on; routing/failover.py)."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        resubmit: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.resubmit = resubmit
        self.status = status


class ResultGone(Exception):  # noqa: N818
    """The provider's result URL answered 403/404/410: it expired or was never ours."""


@dataclass(frozen=True)
class Pending:
    """Still running upstream."""

    progress: float | None = None  # 0-100 when the provider reports it
    queue_position: int | None = None  # jobs ahead of ours, when the provider says
    detail: str = ""  # the provider's latest log line or state, for the operator


@dataclass(frozen=True)
class Done:
    """Finished upstream: where to download the video (headers the download needs)."""

    video_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    seed: int | None = None
    # What the provider says it bills for the job, in its units (fal: billable units),
    # where it reports that; the route's `usd_per_unit` prices them.
    billed_units: Decimal | None = None


def billed_units(value: str | None) -> Decimal | None:
    """A provider's count of billed units (a header), None when absent or not a number."""
    if not value:
        return None
    try:
        units = Decimal(value.strip())
    except InvalidOperation:
        return None
    return units if units.is_finite() and units >= 0 else None


class RemoteEngine(Protocol):
    #: Short identifier recorded on the generation ("fal", "replicate", ...).
    name: ClassVar[str]

    @classmethod
    def from_settings(cls, key: str | None = None) -> RemoteEngine: ...

    def submit(self, job: Job) -> dict[str, Any]: ...

    def poll(self, job: Job, handle: dict[str, Any]) -> Pending | Done: ...

    def cancel(self, job: Job, handle: dict[str, Any]) -> None: ...


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def reason_of(response: requests.Response) -> str:
    """A short, printable reason from an error response (never the request's headers)."""
    text = response.text.strip().replace("\n", " ")
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS] + "..."
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


class ProviderHTTP:
    """`requests` with the provider's auth, timeouts and the transient/permanent split.

    `call` returns the response for 2xx and for the 4xx statuses the caller wants to read
    itself (`expect`); transport failures, malformed bodies and TRANSIENT_STATUS raise
    Transient; any other status raises EngineError with the provider's reason."""

    def __init__(
        self, provider: str, base_url: str, headers: Mapping[str, str], secret: str = ""
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.session.headers["User-Agent"] = "videogen"

    def redact(self, text: str) -> str:
        """Upstream text never repeats our credential in a message we store or log."""
        return text.replace(self.secret, "[redacted]") if self.secret else text

    def fail(self, code: str, reason: object) -> EngineError:
        """The generation's error for a job the provider failed or refused, its reason
        quoted without our credential."""
        return fail_from_upstream(code, self.provider, self.redact(str(reason)))

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def call(
        self,
        method: str,
        path: str,
        *,
        expect: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> requests.Response:
        kwargs.setdefault("timeout", CALL_TIMEOUT)
        url = self.url(path)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            # The exception text names the URL, never the auth headers.
            raise Transient(
                f"{self.provider}: {type(exc).__name__} calling {method} {url}"
            ) from None
        if response.ok or response.status_code in expect:
            return response
        if response.status_code in TRANSIENT_STATUS:
            raise self.transient(response)
        if response.status_code in (401, 403):
            raise EngineError(
                "upstream_auth",
                f"The {self.provider} provider refused this server's credentials "
                f"({self.redact(reason_of(response))}); an operator must check the API key.",
            )
        raise EngineError(
            "upstream_rejected", f"The {self.provider} provider rejected the request: "
            f"{self.redact(reason_of(response))}"
        )  # fmt: skip

    def transient(self, response: requests.Response) -> Transient:
        """A retryable answer (5xx, 429...): its reason, redacted, and its Retry-After."""
        return Transient(
            f"{self.provider}: {self.redact(reason_of(response))}",
            retry_after_seconds(response.headers.get("Retry-After")),
            status=response.status_code,
        )

    def json(self, response: requests.Response) -> dict[str, Any]:
        """The body as a JSON object; a malformed one is a provider glitch, so Transient."""
        try:
            data = response.json()
        except ValueError:
            raise Transient(
                f"{self.provider}: malformed JSON in a {response.status_code} response"
            ) from None
        if not isinstance(data, dict):
            raise Transient(f"{self.provider}: expected a JSON object, got {type(data).__name__}")
        return data


def as_object(value: Any) -> dict[str, Any]:
    """A JSON value as an object, {} when it is anything else: upstream bodies vary."""
    return value if isinstance(value, dict) else {}


def fail_from_upstream(code: str, provider: str, reason: object) -> EngineError:
    text = str(reason).strip() or "no reason given"
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS] + "..."
    messages = {
        "content_policy": f"The {provider} provider refused the content: {text}",
        "upstream_rejected": f"The {provider} provider rejected the request: {text}",
        "upstream_failed": f"The {provider} provider failed the job: {text}",
    }
    return EngineError(code, messages.get(code, f"{provider}: {text}"))


# Words in a provider's failure text that mean the content was refused, not the job broken.
POLICY_WORDS = (
    "content policy",
    "content_policy",
    "safety",
    "flagged",
    "moderation",
    "sensitive",
    "nsfw",
    "prohibited",
    "violat",
    "responsible ai",
    "rai ",
)


def looks_like_policy(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in POLICY_WORDS)
