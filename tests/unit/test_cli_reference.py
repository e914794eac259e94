"""docs/cli-reference.md is what the command line generates today."""

from __future__ import annotations

from pathlib import Path

from leadstage.cli.reference import render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli-reference.md"


def test_the_committed_cli_reference_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/cli-reference.md is out of date: run `python -m leadstage.cli.reference > docs/cli-reference.md`"
    )


def test_the_reference_names_every_command() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for command in (
        "leadstage init",
        "leadstage serve [OPTIONS]",
        "leadstage secrets rotate",
        "leadstage leads transition ID ACTION",
    ):
        assert f"## `{command}" in page
    assert "`--workers WORKERS`" in page


def test_the_transition_table_in_the_concepts_guide_is_the_codes() -> None:
    from leadstage.cli.reference import transition_table

    concepts = PAGE.with_name("concepts.md").read_text(encoding="utf-8")
    assert transition_table() in concepts, (
        "docs/concepts.md: the transition table differs from domain/stages.py"
    )
