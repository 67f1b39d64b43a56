"""The error every layer raises for a request it cannot accept; each surface renders it."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

# What a database that cannot be reached (stopped, restarting, failing over) raises: a 503 at
# the surfaces, never a failed generation in the workers.
DATABASE_DOWN = (OperationalError, InterfaceError)


class ApiError(Exception):
    """`retry_after`: seconds until the same request can succeed, sent as `Retry-After` (every
    429 has one: a rate limit's window, a monthly allowance's reset)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        retry_after: int | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.extra = extra


def invalid(field: str, message: str, code: str = "invalid_parameter") -> ApiError:
    return ApiError(400, code, message, field)
