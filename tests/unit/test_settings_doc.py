"""docs/settings.md matches the code both ways: every setting and environment variable the code reads is
documented with its default, and everything documented is read by the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from leadstage.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "settings.md"
PREFIX = Settings.model_config.get("env_prefix", "")
VARIABLE = re.compile(r"\bLEADSTAGE_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
PRODUCT_ROW = re.compile(
    r"^\| `(?P<name>[a-z_]+)` \| `(?P<env>[A-Z0-9_]+)` \| (?P<default>[^|]+) \| (?P<effect>.+) \|$"
)
OTHER_ROW = re.compile(r"^\| `(?P<env>LEADSTAGE_[A-Z0-9_]+)` \| (?P<default>[^|]+) \| (?P<effect>.+) \|$")


def rendered(value: Any) -> str:
    """A default as the page writes it."""
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def documented() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    product: dict[str, tuple[str, str]] = {}
    other: dict[str, str] = {}
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if m := PRODUCT_ROW.match(line):
            assert m["name"] not in product, f"{m['name']} is documented twice"
            product[m["name"]] = (m["env"], m["default"].strip())
        elif m := OTHER_ROW.match(line):
            other[m["env"]] = m["default"].strip()
    return product, other


def variables_in_code() -> set[str]:
    """Every LEADSTAGE_ variable named in the code, the tests, the benchmarks and the build files."""
    found: set[str] = set()
    files = [*ROOT.joinpath("src").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]
    files += [p for p in ROOT.joinpath("tests").rglob("*.py") if p != Path(__file__)]
    files += [ROOT / "Makefile", *ROOT.joinpath(".ci").glob("*")]
    for path in files:
        if path.is_file():
            found |= set(VARIABLE.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found


def test_every_setting_is_documented_with_its_variable_and_default() -> None:
    product, _other = documented()
    fields = Settings.model_fields
    missing = sorted(set(fields) - set(product))
    assert not missing, f"settings not in docs/settings.md: {missing}"
    unknown = sorted(set(product) - set(fields))
    assert not unknown, f"docs/settings.md documents settings the code does not have: {unknown}"
    for name, field in fields.items():
        env, default = product[name]
        assert env == f"{PREFIX}{name.upper()}", f"{name}: documented as {env}"
        assert default == rendered(field.default), (
            f"{name}: documented default {default}, code {field.default!r}"
        )


def test_every_variable_the_code_reads_is_documented_and_nothing_else() -> None:
    product, other = documented()
    settings_vars = {env for env, _default in product.values()}
    in_code = variables_in_code()
    undocumented = sorted(in_code - settings_vars - set(other))
    assert not undocumented, f"variables read by the code but not in docs/settings.md: {undocumented}"
    stale = sorted(set(other) - in_code)
    assert not stale, f"docs/settings.md lists variables nothing reads: {stale}"


def test_the_test_and_benchmark_variables_defaults_are_the_codes() -> None:
    _product, other = documented()
    readers = {
        "LEADSTAGE_TEST_PG_URL": ROOT / "tests" / "conftest.py",
        "LEADSTAGE_BENCH_PG_URL": ROOT / "bench" / "seed_reports.py",
    }
    for env, path in readers.items():
        default = other[env].strip("`")
        assert re.search(rf'"{env}",\s*"{re.escape(default)}"', path.read_text(encoding="utf-8")), (
            f"{env}: the documented default {default} is not what {path.name} uses"
        )
    assert other["LEADSTAGE_REQUIRE_POSTGRES"] == "unset"
