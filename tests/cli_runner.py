"""Run the real CLI in-process (fast) or as a subprocess (for kills and start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from leadstage.cli.app import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Result:
    capsys.readouterr()
    try:
        main(["--db", db_url, *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def leadstage_bin() -> str:
    return str(Path(sys.executable).with_name("leadstage"))


def run_process(db_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
    proc = subprocess.run(
        [leadstage_bin(), "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
