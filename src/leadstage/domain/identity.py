"""Identity resolution rules (DOMAIN.md R2): canonical emails and domains, and the order of matching.

Syntax checks of emails and phone numbers need third-party libraries, so they live in an adapter
(``adapters/identity.py``) behind the ``IdentityNormalizer`` port; the rules that decide what counts
as the same person live here.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from dataclasses import dataclass

#: Free-mail and ISP domains: an address there never identifies a company account.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.co.in",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.de",
        "outlook.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "zoho.com",
        "qq.com",
        "163.com",
        "126.com",
        "rediffmail.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "t-online.de",
        "comcast.net",
        "verizon.net",
        "att.net",
        "btinternet.com",
        "sky.com",
    }
)
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True)
class EmailRules:
    """How far emails are folded before matching. Case and surrounding space always are."""

    strip_plus: bool = True
    gmail_dots: bool = True


def canonical_email(address: str, rules: EmailRules = EmailRules()) -> str:
    """The form of a (syntactically valid) address used for matching: ``J.Doe+news@GMail.com`` -> ``jdoe@gmail.com``."""
    local, _, domain = address.strip().lower().rpartition("@")
    domain = domain.rstrip(".")
    if "xn--" in domain:  # the same domain written in ASCII (punycode) or in Unicode is one domain
        with contextlib.suppress(UnicodeError, ValueError):
            domain = domain.encode("ascii").decode("idna")
    if domain == "googlemail.com":
        domain = "gmail.com"
    if rules.strip_plus and "+" in local:
        local = local.split("+", 1)[0]
    if rules.gmail_dots and domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def lookup_forms(address: str) -> list[str]:
    """Every canonical form an address may have been stored under, whatever the folding settings were:
    a look-up by a typed address finds the lead however it was imported."""
    forms = [
        canonical_email(address, EmailRules(strip_plus=p, gmail_dots=g))
        for p in (True, False)
        for g in (True, False)
    ]
    return list(dict.fromkeys(forms))


def email_domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return normalize_domain(address.rpartition("@")[2])


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def normalize_domain(raw: str | None) -> str | None:
    """``HTTPS://www.Acme.com:443/about`` -> ``acme.com``; None when nothing domain-like is left."""
    if raw is None:
        return None
    text = raw.strip().lower()
    text = _SCHEME.sub("", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    if not text or "." not in text or " " in text:
        return None
    return text


def company_domain(address: str | None) -> str | None:
    """The domain of an email address when it can identify a company account, else None."""
    domain = email_domain(address)
    if domain is None or domain in FREE_MAIL_DOMAINS:
        return None
    return domain


def normalize_company_name(name: str) -> str:
    """Case- and space-folded company name, for matching accounts that have no domain."""
    return " ".join(name.lower().split())


def tombstone_hash(canonical: str, *, salt: str) -> str:
    """A keyed one-way hash (HMAC-SHA256) of a canonical identifier, kept after a person asks to be
    forgotten: the key is a per-database secret, so a list of known addresses cannot be hashed
    elsewhere and compared."""
    return hmac.new(salt.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def fingerprint(values: list[tuple[str, str]]) -> str:
    """A stable hash of a record's values, used to re-recognise rows that carry no usable identity."""
    digest = hashlib.sha256()
    for name, value in sorted(values):
        digest.update(name.encode())
        digest.update(b"\x1f")
        digest.update(value.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


MATCH_ORDER = ("email", "external_id", "phone")

#: External-id system under which a lead keeps the email of every lead merged into it, so that the merged
#: person arriving again (a form, a file, an activity) is recognised as the survivor.
MERGED_EMAIL = "merged-email"
"""An incoming lead matches an existing one by normalised email, then external id, then phone."""
