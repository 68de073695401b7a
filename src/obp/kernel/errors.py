"""The error tree: services raise these, and only `obp.http` maps them to status codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: where it is (`loc`) and what is wrong and accepted (`msg`)."""

    loc: tuple[str | int, ...]
    msg: str


class ObpError(Exception):
    """Base of every error the platform raises on purpose."""

    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ObpError):
    """The request names a field whose value is not accepted."""

    title = "Invalid input"

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.errors = tuple(errors)

    @classmethod
    def field(cls, loc: tuple[str | int, ...], msg: str) -> InvalidInput:
        """One invalid field, with the message used as the detail as well."""
        return cls(f"{'.'.join(str(part) for part in loc)}: {msg}", [FieldError(loc, msg)])


class NotFound(ObpError):
    """The addressed object does not exist (or the caller may not know that it does)."""

    title = "Not found"


class Conflict(ObpError):
    """The change contradicts the current state, such as a name that already exists."""

    title = "Conflict"


class PreconditionFailed(ObpError):
    """A conditional request's precondition does not hold."""

    title = "Precondition failed"


class PayloadTooLarge(ObpError):
    """The request body is larger than the configured limit."""

    title = "Payload too large"


class RangeNotSatisfiable(ObpError):
    """A byte range lies wholly outside a resource of `size` bytes."""

    title = "Range not satisfiable"

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail)
        self.size = size


class UnsupportedMediaType(ObpError):
    """The request body is in a format the endpoint does not accept."""

    title = "Unsupported media type"


class Unauthorized(ObpError):
    """The caller is not authenticated."""

    title = "Unauthorized"


class Forbidden(ObpError):
    """The caller is authenticated but not allowed to do this."""

    title = "Forbidden"


class TooManyRequests(ObpError):
    """The caller must wait `retry_after` seconds before trying again."""

    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ObpError):
    """A backend the request needs cannot be reached; retrying later may succeed."""

    title = "Service unavailable"


class Sealed(Unavailable):
    """The vault's key store cannot be opened, so nothing that needs keys can be served."""

    title = "Vault sealed"


class TamperedError(ObpError):
    """Sealed data or a wrapped key failed authentication: altered, or under another context."""

    title = "Integrity check failed"


class ConfigurationError(ObpError):
    """The settings cannot produce a working platform; raised at startup."""

    title = "Configuration error"
