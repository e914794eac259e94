"""Domain errors.

The tree::

    DomainError
    ├── ValidationError          input is malformed or incomplete (CLI exit 2, HTTP 422)
    │   ├── UnknownAction
    │   ├── UnknownReasonCode
    │   ├── MissingField
    │   └── AlreadyExists        a name that must be unique is taken (HTTP 409)
    ├── RuleViolation            input is fine but a rule refuses it (CLI exit 3)
    │   ├── PermissionDenied     the actor's role may not do this (HTTP 403)
    │   ├── InvalidTransition    not allowed from the lead's current state (HTTP 409)
    │   └── PolicyNotMet         the qualification policy is not satisfied (HTTP 409)
    ├── NotFound                 a referenced lead, user or account does not exist (HTTP 404)
    ├── Unauthenticated          no valid credentials (HTTP 401)
    └── ConcurrencyConflict      the lead changed since it was read (HTTP 409/412)
"""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base of every error the domain raises."""


class ValidationError(DomainError):
    """Input is malformed, incomplete or names something unknown."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownAction(ValidationError):
    """The action name is not in the transition table."""


class UnknownReasonCode(ValidationError):
    """The reason code is not in the taxonomy for this action."""


class MissingField(ValidationError):
    """A field the action needs was not given."""


class AlreadyExists(ValidationError):
    """A name that must be unique (a user, a segment) is taken."""


class RuleViolation(DomainError):
    """Well-formed input refused by a rule."""


class PermissionDenied(RuleViolation):
    """The actor's role may not perform this action on this lead."""


class InvalidTransition(RuleViolation):
    """The action is not allowed from the lead's current stage and status."""

    def __init__(self, from_state: str, to_state: str, why: str, allowed: Sequence[str] = ()) -> None:
        self.from_state = from_state
        self.to_state = to_state
        self.why = why
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none"
        super().__init__(
            f"cannot go from {from_state} to {to_state}: {why} (allowed from {from_state}: {allowed_text})"
        )


class PolicyNotMet(RuleViolation):
    """The qualification policy is not satisfied; `missing` lists what is lacking."""

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


class NotFound(DomainError):
    """A referenced record does not exist."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that are not (or no longer) valid."""


class ConcurrencyConflict(DomainError):
    """The record changed since it was read; nothing was written."""
