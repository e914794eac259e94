"""The keyring signs with its current key and accepts retired keys until their time is up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadstage.domain.signing import Keyring, SigningKey

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def ring(secret: bytes = b"a" * 32) -> Keyring:
    return Keyring((SigningKey(id="k1", secret=secret, created_at=T0),))


def test_a_signed_value_opens_and_says_it_used_the_current_key() -> None:
    keys = ring()
    token = keys.sign("session", "abc")
    opened = keys.open("session", token, now=T0)
    assert opened is not None
    assert (opened.value, opened.key_id, opened.current) == ("abc", "k1", True)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: "abd" + t[3:],  # another value
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another signature
        lambda t: t.replace(".k1.", ".k9."),  # an unknown key
        lambda t: t.split(".")[0],  # no signature at all
        lambda t: "",
    ],
)
def test_any_change_to_a_signed_value_is_refused(tamper: object) -> None:
    keys = ring()
    token = keys.sign("session", "abc")
    assert keys.open("session", tamper(token), now=T0) is None  # type: ignore[operator]


def test_a_signature_for_one_purpose_never_verifies_for_another() -> None:
    keys = ring()
    assert keys.open("login-csrf", keys.sign("session", "abc"), now=T0) is None
    assert not keys.check("session", "abc", keys.tag("csrf", "abc"), now=T0)
    assert keys.check("csrf", "abc", keys.tag("csrf", "abc"), now=T0)


def test_another_secret_does_not_verify() -> None:
    assert ring(b"b" * 32).open("session", ring().sign("session", "abc"), now=T0) is None


def test_a_rotated_key_verifies_during_its_grace_and_not_after() -> None:
    old = ring()
    token = old.sign("session", "abc")
    new = old.rotated(b"c" * 32, at=T0, grace=timedelta(hours=2))
    assert new.current.id == "k2"
    during = new.open("session", token, now=T0 + timedelta(hours=1))
    assert during is not None
    assert not during.current  # the caller signs it again with k2
    assert new.open("session", new.sign("session", "abc"), now=T0 + timedelta(hours=1)) is not None
    assert new.open("session", token, now=T0 + timedelta(hours=2)) is None


def test_a_zero_grace_refuses_the_old_key_at_once_and_expired_keys_are_dropped() -> None:
    old = ring()
    token = old.sign("session", "abc")
    now_refused = old.rotated(b"c" * 32, at=T0, grace=timedelta(0))
    assert now_refused.open("session", token, now=T0) is None
    assert [k.id for k in now_refused.keys] == ["k2"]
    twice = old.rotated(b"c" * 32, at=T0, grace=timedelta(hours=1)).rotated(
        b"d" * 32, at=T0 + timedelta(hours=3), grace=timedelta(hours=1)
    )
    assert [k.id for k in twice.keys] == ["k3", "k2"]  # k1's grace had run out


def test_a_keyring_refuses_short_secrets_and_two_current_keys() -> None:
    with pytest.raises(ValueError, match="shorter"):
        ring(b"x" * 8)
    with pytest.raises(ValueError, match="only the first"):
        Keyring((SigningKey("k2", b"a" * 32, T0), SigningKey("k1", b"b" * 32, T0)))
