"""Scoring models as YAML: parse with line numbers so validation errors can name the line and key."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from leadstage.domain.errors import ValidationError
from leadstage.domain.qualification import QualificationSetup, parse_setup
from leadstage.domain.scoring import Locate

DEFAULT_MODEL_FILE = "default_scoring.yaml"


def load_yaml(text: str, *, source: str) -> tuple[Any, Locate]:
    """The document and a function from a key path to the line it is on."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ValidationError(f"{source}: {where}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{source}: invalid YAML: {exc}") from None
    lines: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node | None, path: tuple[Any, ...]) -> None:
        if n is None:
            return
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key = yaml.safe_load(key_node.value) if key_node.tag.endswith(":int") else key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                if isinstance(key, int):
                    lines.setdefault((*path, str(key)), key_node.start_mark.line + 1)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    walk(node, ())

    def locate(path: tuple[Any, ...]) -> int | None:
        while path:
            if path in lines:
                return lines[path]
            path = path[:-1]
        return lines.get(())

    return data, locate


def default_model_source() -> str:
    """The default scoring model shipped with leadstage."""
    return (
        resources.files("leadstage.adapters.models").joinpath(DEFAULT_MODEL_FILE).read_text(encoding="utf-8")
    )


def load_qualification_setup(path: Path) -> QualificationSetup:
    """The qualification frameworks file (``LEADSTAGE_QUALIFICATION_FILE``); errors name the file and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            f"{path}: cannot read the qualification file: {exc.strerror}", field="file"
        ) from None
    doc, _locate = load_yaml(text, source=str(path))
    return parse_setup(doc, where=str(path))
