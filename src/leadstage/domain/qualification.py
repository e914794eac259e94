"""Qualification frameworks and the policy that gates ``qualify_sql`` (DOMAIN.md R8, R9).

BANT is the default framework: Budget, Authority, Need, Timely. The default policy needs all four
criteria confirmed; a policy can instead ask for some criteria plus N of the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from leadstage.domain.stages import QualificationCheck

BANT: tuple[str, ...] = ("budget", "authority", "need", "timeline")


@dataclass(frozen=True)
class Policy:
    """``required`` criteria must all be confirmed, and at least ``at_least`` of ``optional``."""

    required: tuple[str, ...] = BANT
    optional: tuple[str, ...] = ()
    at_least: int = 0

    def describe(self) -> str:
        text = " and ".join(self.required) or "nothing required"
        if self.optional:
            text += f", plus {self.at_least} of {', '.join(self.optional)}"
        return text


DEFAULT_POLICY = Policy()


def evaluate(confirmed: Mapping[str, bool], policy: Policy = DEFAULT_POLICY) -> QualificationCheck:
    """Whether a lead's confirmed criteria satisfy the policy, and what is missing if not."""
    missing = [c for c in policy.required if not confirmed.get(c, False)]
    optional_ok = [c for c in policy.optional if confirmed.get(c, False)]
    short = max(0, policy.at_least - len(optional_ok))
    if short:
        missing.append(f"{short} more of {', '.join(c for c in policy.optional if c not in optional_ok)}")
    passed = not missing
    summary = (
        f"{', '.join(c for c in _ordered(confirmed, policy) if confirmed.get(c))} confirmed" if passed else ""
    )
    return QualificationCheck(passed=passed, missing=tuple(missing), summary=summary)


def _ordered(confirmed: Mapping[str, bool], policy: Policy) -> Sequence[str]:
    seen = [*policy.required, *policy.optional]
    return [*seen, *(c for c in confirmed if c not in seen)]
