"""The real X Education data set: every row, every column, findable by its id."""

from __future__ import annotations

import csv

from tests.cli_runner import run


def test_all_9240_rows_load_with_every_column_and_show_by_prospect_id(capsys, db_url, xeducation):
    result = run(capsys, db_url, "import", "leads", str(xeducation), "--id-column", "Prospect ID", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert (report["rows_read"], report["created"], report["rejected"]) == (9240, 9240, 0)
    assert run(capsys, db_url, "leads", "list", "--json", "--limit", "1").json()["total"] == 9240
    with xeducation.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in (rows[0], rows[4321], rows[-1]):
        shown = run(capsys, db_url, "leads", "show", row["Prospect ID"], "--json").json()
        assert shown["external_ids"] == [{"system": "import", "value": row["Prospect ID"]}]
        properties = shown["properties"]
        assert set(properties) == set(row) - {"Prospect ID"}
        for column, text in row.items():
            if column == "Prospect ID":
                continue
            value = properties[column]
            assert (value is None and text == "") or str(value) == text or float(value) == float(text), column
    again = run(
        capsys, db_url, "import", "leads", str(xeducation), "--id-column", "Prospect ID", "--json"
    ).json()
    assert (again["created"], again["unchanged"]) == (0, 9240)
