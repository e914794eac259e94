"""Every command in the guides works: each guide's shell blocks run, in order, as one bash script
(`set -euo pipefail`) in a new directory with a new database.

How a guide is read:

* ```` ```sh ```` blocks are run. A line that starts the server in the background
  (`leadstage serve ... &`) is followed by a wait until it answers; servers are stopped at the end.
* ```` ```yaml file=NAME ```` (any language with `file=NAME`) is written to NAME before the script runs:
  the files the commands use are the ones shown.
* Other blocks must be of a language that is not a command (`text` output, `json`, `yaml`, `ini`, `nginx`
  configuration): a test refuses any other, so no command can hide in a block that is not run.
* The port 8000 becomes a free port, `/etc/leadstage/` a directory of the test's own, and the PostgreSQL
  database `leadstage` a new database of the test server (dropped afterwards), so guides say what a
  reader types. `LEADSTAGE_TICK_SECONDS` is 1 so that background work shows at once.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDES = ["getting-started.md", "concepts.md", "scoring-model.md", "api.md", "deploying.md", "operations.md"]
NOT_COMMANDS = {"text", "json", "yaml", "ini", "nginx", "csv"}
BLOCK = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.S | re.M)
SERVE = re.compile(r"^(leadstage .*\bserve\b.*)&\s*$", re.M)
GUIDE_DATABASE = "postgresql://postgres@127.0.0.1:5432/leadstage"


def blocks(guide: str) -> list[tuple[str, dict[str, str], str]]:
    """(language, attributes, body) of every fenced block of a guide."""
    found = []
    for head, body in BLOCK.findall((DOCS / guide).read_text(encoding="utf-8")):
        language, *rest = head.split() or [""]
        attributes = dict(item.split("=", 1) for item in rest if "=" in item)
        found.append((language, attributes, body))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def guide_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A new PostgreSQL database for a guide that uses one (its URL), dropped afterwards."""
    request.getfixturevalue("pg_server")
    name = f"leadstage_guide_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def script(guide: str, port: int, database: str | None) -> str:
    lines = [
        "set -euo pipefail",
        "servers=()",
        'trap \'for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done\' EXIT',
    ]
    for language, _attributes, body in blocks(guide):
        if language != "sh":
            continue
        body = SERVE.sub(
            lambda m: (
                f"{m.group(1)}> serve-$RANDOM.log 2>&1 &\nservers+=($!)\n"
                f"for _ in $(seq 600); do curl -sf http://127.0.0.1:{port}/api/v1/health >/dev/null && break; "
                "sleep 0.2; done"
            ),
            body,
        )
        lines.append(body)
    source = "\n".join(lines)
    source = re.sub(r"(?<![0-9])8000(?![0-9])", str(port), source)
    source = source.replace("/etc/leadstage/", "$PWD/etc/leadstage/")
    if database is not None:
        base = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
        source = source.replace(GUIDE_DATABASE, f"{base}/{database}")
        source = re.sub(r"(createdb|dropdb)( .*) leadstage$", rf"\1\2 {database}", source, flags=re.M)
    return source


@pytest.mark.parametrize("guide", GUIDES)
def test_every_block_of_a_guide_is_run_or_is_not_a_command(guide: str) -> None:
    found = blocks(guide)
    assert any(language == "sh" for language, _a, _b in found), f"{guide} has no commands"
    for language, attributes, _body in found:
        assert language == "sh" or language in NOT_COMMANDS or "file" in attributes, (
            f"{guide}: a ```{language} block is neither run nor a known non-command language"
        )


@pytest.mark.parametrize("guide", GUIDES)
def test_the_commands_of_a_guide_work(guide: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not shutil.which("jq") or not shutil.which("curl"):
        pytest.skip("the guides use jq and curl")
    uses_postgres = any(GUIDE_DATABASE in body for _l, _a, body in blocks(guide))
    database = request.getfixturevalue("guide_database") if uses_postgres else None
    for _language, attributes, body in blocks(guide):
        if "file" in attributes:
            (tmp_path / attributes["file"]).write_text(body, encoding="utf-8")
    port = _free_port()
    path = tmp_path / "guide.sh"
    path.write_text(script(guide, port, database), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSTAGE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["LEADSTAGE_TICK_SECONDS"] = "1"
    done = subprocess.run(
        ["bash", str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    servers = "".join(f"\n--- {log.name}\n{log.read_text()[-3000:]}" for log in tmp_path.glob("serve-*.log"))
    assert done.returncode == 0, f"{guide} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}{servers}"
