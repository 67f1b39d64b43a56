"""The error every layer raises for a request it cannot accept; each surface renders it."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

# What a database that cannot be reached (stopped, restarting, failing over) raises: a 503 at
# the surfaces, never a failed generation in the workers.
DATABASE_DOWN = (OperationalError, InterfaceError)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, **extra: object
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra


def invalid(field: str, message: str, code: str = "invalid_parameter") -> ApiError:
    return ApiError(400, code, message, field)
