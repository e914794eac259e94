"""Outbound HTTP for webhooks (the standard library's client; no redirects followed)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class UrllibSender:
    """POSTs a webhook body; any answer outside 2xx, a timeout or a refused connection is a failure."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int | None, str | None]:
        if not url.startswith(("http://", "https://")):
            return None, f"not an http(s) URL: {url!r}"
        request = urllib.request.Request(  # noqa: S310  (the scheme is checked just above)
            url, data=body, method="POST", headers={**headers, "User-Agent": "leadstage"}
        )
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                return int(response.status), None
        except urllib.error.HTTPError as exc:
            return int(exc.code), f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
