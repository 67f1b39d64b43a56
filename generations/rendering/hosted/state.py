"""What a worker remembers of a job at a hosted provider between two of its short steps.

Stored as JSON on the generation (`Generation.engine_handle`) and read back at the next step,
by whichever worker takes it. Unknown keys are ignored and missing ones take their defaults,
so rows written by an older or newer release of this class load either way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class HostedState:
    # Epoch seconds: the whole job must be done by `deadline` (the route's deadline_s).
    deadline: float = 0.0
    started: float = 0.0
    # The provider's handle for the submitted job (None: not submitted, or to submit again).
    job: dict[str, Any] | None = None
    upstream_model: str = ""
    # The fingerprint of the key of the provider's pool the job was submitted with: every
    # poll and the cancel use that key (routing/pools.py). Never the key itself.
    key: str = ""
    # Waiting for a free slot of the provider (VIDEOGEN_PROVIDER_CONCURRENCY): since when
    # (epoch seconds, 0: not waiting), and the seconds waited so far.
    slot_wait_since: float = 0.0
    slot_waited_s: float = 0.0
    polls: int = 0  # steps taken so far: drives the backoff
    # What the provider last said: jobs ahead of ours, and its latest state or log line.
    queue_position: int | None = None
    detail: str = ""
    last_error: str = ""
    # Bounded retries, each counted across steps.
    resubmits: int = 0  # the provider failed the job in a way it calls retryable
    cancel_tries: int = 0  # asking it to cancel failed transiently
    result_gone: int = 0  # its result URL answered 403/404/410
    bad_output: int = 0  # the downloaded file did not decode
    rearmed: int = 0  # the reaper found the poll lost (a worker or broker restart)
    key_retries: int = 0  # the provider refused the key: tried again on another of the pool
    # Failover (routing/failover.py): transient failures on this route before the job ran
    # upstream, and the 429s among them, counted apart.
    route_failures: int = 0
    rate_limited: int = 0

    @property
    def submitted(self) -> bool:
        return self.job is not None

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> HostedState:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        known = {k: v for k, v in (data or {}).items() if k in fields}
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
