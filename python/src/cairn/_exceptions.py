"""The exceptions `cairn.Client` raises, one class per kind of answer, chosen by status code.

Every error the server sends has MLflow's body, `{"error_code", "message"}`; both are kept on
the exception so callers can branch on the code without parsing the message.
"""

from __future__ import annotations


class CairnError(Exception):
    """Anything that went wrong talking to a Cairn server."""


class ConnectionFailed(CairnError):
    """The server could not be reached (refused, reset, timed out, DNS)."""


class APIError(CairnError):
    """The server answered with an error status."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


class BadRequest(APIError):
    """400: the request was malformed or a value was invalid."""


class Unauthorized(APIError):
    """401: no or wrong credentials."""


class Forbidden(APIError):
    """403: the credentials do not allow this."""


class NotFound(APIError):
    """404: the node, run, prediction or route does not exist."""


class Conflict(APIError):
    """409: the thing exists already with other content (lineage records never change)."""


class RateLimited(APIError):
    """429: too many requests; raised only after the retries ran out."""


class ServerError(APIError):
    """5xx: the server failed; raised only after the retries ran out."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


def error_for_status(status: int, error_code: str, message: str) -> APIError:
    """The exception for an error answer."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(status, error_code, message)
