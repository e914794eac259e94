"""The session signing keys on disk: a JSON file outside the database, readable by its owner only (ADR 15).

SQLite keeps it beside the database file (``leadstage.db.secret``); PostgreSQL has no file to sit beside,
so ``LEADSTAGE_SECRET_FILE`` must name it (every server of one database needs the same file). The file is
written whole and atomically (a new file renamed over the old), so a server never reads half a keyring;
servers notice a rotation by the file's change and reload it without restarting.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from leadstage.adapters.db.engine import normalize_url
from leadstage.adapters.files import FileProblem
from leadstage.domain.signing import Keyring, SigningKey

FORMAT = "leadstage-session-keys/1"
SECRET_BYTES = 32


class KeyringProblem(FileProblem):
    """The key file is missing, unreadable, malformed or readable by others; the message says which."""


def keyring_path(database_url: str, secret_file: str | None) -> Path | None:
    """Where the keys live: the configured file, else beside a SQLite database file; None: not known."""
    if secret_file:
        return Path(secret_file).expanduser()
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}.secret").expanduser()
    return None


def require_path(database_url: str, secret_file: str | None) -> Path:
    path = keyring_path(database_url, secret_file)
    if path is None:
        raise KeyringProblem(
            "LEADSTAGE_SECRET_FILE must name the session signing key file for a PostgreSQL database "
            "(a path readable only by the server's user, the same file for every server)"
        )
    return path


def new_key(at: datetime, number: int = 1) -> SigningKey:
    return SigningKey(id=f"k{number}", secret=secrets.token_bytes(SECRET_BYTES), created_at=at)


def _document(keyring: Keyring) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "keys": [
            {
                "id": k.id,
                "secret": k.secret.hex(),
                "created_at": k.created_at.isoformat(),
                "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                "accept_until": k.accept_until.isoformat() if k.accept_until else None,
            }
            for k in keyring.keys
        ],
    }


def _write_new(path: Path, keyring: Keyring) -> None:
    """Create ``path`` (mode 0600) with the keyring; FileExistsError when it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(_document(keyring), f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def create_keyring(path: Path, *, at: datetime) -> bool:
    """Generate the first key when the file does not exist; False (nothing written) when it does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_new(path, Keyring((new_key(at),)))
    except FileExistsError:
        return False
    return True


def save_keyring(path: Path, keyring: Keyring) -> None:
    """Replace the file atomically: readers see the old keyring or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_new(tmp, keyring)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _when(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise KeyringProblem(f"{where}: not an ISO time: {value!r}") from None


def load_keyring(path: Path) -> Keyring:
    """Read and check the file; refuses one that others may read (like ssh's private keys)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyringProblem(
            f"{path}: no session signing key file; `leadstage init` creates it "
            "(for several servers, copy the same file to each)"
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyringProblem(
            f"{path}: readable by others (mode {stat.S_IMODE(info.st_mode):o}); `chmod 600 {path}`"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyringProblem(f"{path}: not a readable key file ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyringProblem(f"{path}: not a leadstage key file (format {FORMAT!r} expected)")
    keys = []
    for i, item in enumerate(document.get("keys") or []):
        where = f"{path}: keys[{i}]"
        try:
            secret = bytes.fromhex(str(item["secret"]))
            created = _when(item["created_at"], f"{where}.created_at")
            assert created is not None
            keys.append(
                SigningKey(
                    id=str(item["id"]),
                    secret=secret,
                    created_at=created,
                    retired_at=_when(item.get("retired_at"), f"{where}.retired_at"),
                    accept_until=_when(item.get("accept_until"), f"{where}.accept_until"),
                )
            )
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise KeyringProblem(f"{where}: {type(exc).__name__}: {exc}") from None
    try:
        return Keyring(tuple(keys))
    except ValueError as exc:
        raise KeyringProblem(f"{path}: {exc}") from None


class KeyringFile:
    """The keyring of one file, read again whenever the file changes (a rotation by another process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._keyring: Keyring | None = None

    def get(self) -> Keyring:
        info = self.path.stat() if self.path.exists() else None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size) if info else None
        with self._lock:
            if self._keyring is None or stamp != self._seen:
                self._keyring = load_keyring(self.path)
                self._seen = stamp
            return self._keyring


class KeyringStore:
    """The key file as a :class:`leadstage.services.session_keys.KeyStore`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Keyring:
        return load_keyring(self.path)

    def save(self, keyring: Keyring) -> None:
        save_keyring(self.path, keyring)
