"""Identity libraries behind the ``IdentityNormalizer`` port: email-validator, phonenumbers, rapidfuzz."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from rapidfuzz import fuzz

from leadstage.domain.identity import EmailRules, canonical_email
from leadstage.services.ports import NormalizedEmail, NormalizedPhone


class LibraryIdentityNormalizer:
    """Syntax-only email checks (no DNS), E.164 phones in a default region, fuzzy name similarity."""

    def __init__(self, *, rules: EmailRules, default_region: str = "US") -> None:
        self.rules = rules
        self.default_region = default_region.upper()
        self._email_cache: dict[str, NormalizedEmail] = {}

    def email(self, raw: str) -> NormalizedEmail:
        cached = self._email_cache.get(raw)
        if cached is not None:
            return cached
        text = raw.strip()
        try:
            info = validate_email(text, check_deliverability=False, allow_smtputf8=True)
            result = NormalizedEmail(
                raw=raw, canonical=canonical_email(info.normalized, self.rules), valid=True
            )
        except EmailNotValidError as exc:
            result = NormalizedEmail(raw=raw, canonical=None, valid=False, problem=str(exc))
        if len(self._email_cache) > 100_000:
            self._email_cache.clear()
        self._email_cache[raw] = result
        return result

    def phone(self, raw: str) -> NormalizedPhone:
        try:
            number = phonenumbers.parse(raw, self.default_region)
        except phonenumbers.NumberParseException as exc:
            return NormalizedPhone(raw=raw, e164=None, valid=False, problem=str(exc))
        if not phonenumbers.is_valid_number(number):
            return NormalizedPhone(raw=raw, e164=None, valid=False, problem="not a valid phone number")
        return NormalizedPhone(
            raw=raw, e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), valid=True
        )

    def name_similarity(self, a: str, b: str) -> float:
        return float(fuzz.token_sort_ratio(a.lower(), b.lower()))
