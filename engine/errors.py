"""The one error tree of paygrid.

    PaygridError (type, code, http_status)
    ├── InvalidRequest          400 invalid_request_error   (param names the field)
    ├── AuthenticationFailed    401 authentication_error
    ├── PermissionDenied        403 permission_error
    ├── NotFound                404 invalid_request_error / resource_missing
    ├── Conflict                409 idempotency_error
    │   ├── ConcurrentUpdate    409 api_error               (a row moved on under us)
    │   └── StillInUse          409 invalid_request_error   (e.g. erasing a subscribed customer)
    ├── CardDeclined            402 card_error             (decline_code)
    ├── StateError              422 invalid_request_error   (illegal transition, amount limits)
    ├── IdempotencyMismatch     422 idempotency_error
    ├── RateLimited             429 rate_limit_error
    ├── InternalError           500 api_error / internal_error (a bug: logged, never retried)
    │   ├── CryptoError         500 decryption_failed / key_unavailable
    │   └── BackupError         500 backup_invalid / backup_refused / restore_failed (CLI)
    └── UpstreamError           503 api_error               (retryable; `Retry-After`)
        ├── DatabaseUnavailable 503 database_unavailable    (connection lost, restarting, …)
        ├── ShardMoved          503 shard_moved             (the customer's slot moved on)
        ├── GatewayUnavailable  502 gateway_error
        ├── GatewayCircuitOpen  503 gateway_unavailable     (every gateway it may use is open)
        └── GatewayTimeout      504 gateway_timeout

Every error keeps its state in ``args`` so it pickles across Ray process boundaries unchanged,
and renders to the API's error object with :meth:`PaygridError.to_dict`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PaygridError(Exception):
    """Base of every error the API can answer with."""

    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message, code, param, decline_code)

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def code(self) -> str:
        return str(self.args[1] or self.default_code)

    @property
    def param(self) -> str | None:
        return self.args[2]  # type: ignore[no-any-return]

    @property
    def decline_code(self) -> str | None:
        return self.args[3]  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The API error object: type, code, message and, where they apply, param and
        decline_code."""
        body: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            body["param"] = self.param
        if self.decline_code is not None:
            body["decline_code"] = self.decline_code
        return body


class InvalidRequest(PaygridError):
    type = "invalid_request_error"
    default_code = "parameter_invalid"
    http_status = 400


class AuthenticationFailed(PaygridError):
    type = "authentication_error"
    default_code = "invalid_api_key"
    http_status = 401


class PermissionDenied(PaygridError):
    type = "permission_error"
    default_code = "insufficient_scope"
    http_status = 403


class NotFound(PaygridError):
    type = "invalid_request_error"
    default_code = "resource_missing"
    http_status = 404


class Conflict(PaygridError):
    type = "idempotency_error"
    default_code = "idempotency_key_in_use"
    http_status = 409


class CardDeclined(PaygridError):
    type = "card_error"
    default_code = "card_declined"
    http_status = 402


class ConcurrentUpdate(Conflict):
    """A conditional update found the row already moved on by another writer."""

    type = "api_error"
    default_code = "concurrent_update"


class StillInUse(Conflict):
    """A resource cannot be changed so while something live depends on it (a customer's
    erasure while it has an active subscription or a payment in flight)."""

    type = "invalid_request_error"
    default_code = "resource_in_use"


class StateError(PaygridError):
    type = "invalid_request_error"
    default_code = "payment_state_invalid"
    http_status = 422


class IdempotencyMismatch(PaygridError):
    type = "idempotency_error"
    default_code = "idempotency_key_reused"
    http_status = 422


class RateLimited(PaygridError):
    type = "rate_limit_error"
    default_code = "rate_limited"
    http_status = 429


class InternalError(PaygridError):
    """Something broke that no retry will mend; the details are in the log, under the
    correlation id the answer carries."""

    type = "api_error"
    default_code = "internal_error"
    http_status = 500


class CryptoError(InternalError):
    """A sealed value did not open (wrong key, moved to another row, altered), or its data key
    is wrapped under a master key this process does not hold. Never retried: an operator must
    look (the message names no secret)."""

    default_code = "decryption_failed"


class BackupError(InternalError):
    """A backup could not be made, verified or restored: a file that fails authentication
    (wrong key, altered, truncated), one from a newer schema, a target that is not empty, or
    PostgreSQL's own tools failing. Raised only to operator commands and the backup job; the
    database is left as it was."""

    default_code = "backup_invalid"


class UpstreamError(PaygridError):
    """A dependency failed: gateway (502/504), shard or database (503). A 503 is retryable."""

    type = "api_error"
    default_code = "upstream_unavailable"
    http_status = 503


class DatabaseUnavailable(UpstreamError):
    """PostgreSQL cannot be reached or cannot serve right now (connection lost, starting up
    or shutting down, no connection free in time, a serialization failure): retry."""

    default_code = "database_unavailable"


class ShardMoved(UpstreamError):
    """The shard no longer owns the customer's slot (a restart or a new shard count gave it to
    another): it wrote nothing; the retry reaches the new owner."""

    default_code = "shard_moved"


class GatewayUnavailable(UpstreamError):
    default_code = "gateway_error"
    http_status = 502


class GatewayCircuitOpen(UpstreamError):
    """Every gateway the payment may go to has its circuit open: refused before anything was
    written or sent; retry later."""

    default_code = "gateway_unavailable"


class GatewayTimeout(UpstreamError):
    default_code = "gateway_timeout"
    http_status = 504
