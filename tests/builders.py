"""Test data builders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from leadstage.domain.scoring import RuleState
from leadstage.domain.stages import Actor, LeadState, Role, Stage, Status

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def state(
    stage: str = "lead",
    status: str = "open",
    *,
    cycle: int = 1,
    furthest: str | None = None,
    owner_id: int | None = None,
    owner_team: str | None = None,
) -> LeadState:
    return LeadState(
        stage=Stage(stage),
        status=Status(status),
        cycle=cycle,
        furthest_stage=Stage(furthest or stage),
        owner_id=owner_id,
        owner_team=owner_team,
    )


def actor(
    role: str = "admin", *, name: str | None = None, user_id: int | None = None, team: str | None = None
) -> Actor:
    return Actor(name=name or role, role=Role(role), user_id=user_id, team=team)


def assert_same_states(
    got: Mapping[str, RuleState], expected: Mapping[str, RuleState], *, where: object = None
) -> None:
    """Per-rule engagement states reached two ways agree: the same rules, anchors, hits, last hits and
    window times exactly, values within rounding (sums taken in another order)."""
    assert set(got) == set(expected), where
    for name, state in expected.items():
        other = got[name]
        assert (other.anchor, other.hits, other.last, other.times) == (
            state.anchor,
            state.hits,
            state.last,
            state.times,
        ), (where, name)
        assert abs(other.value - state.value) <= 1e-9 * max(1.0, abs(state.value)), (where, name)
