"""An activity's stored properties read back the same way everywhere (scoring, backtests, advocacy,
routing, imports)."""

from __future__ import annotations

from leadstage.domain.activities import decoded_properties


def test_stored_properties_decode_to_a_mapping_and_nothing_stored_is_no_properties():
    assert decoded_properties('{"page": "/pricing", "score": 9}') == {"page": "/pricing", "score": 9}
    assert decoded_properties({"page": "/pricing"}) == {"page": "/pricing"}
    # SQL NULL, and the JSON null SQLAlchemy writes for None into a JSON column
    assert decoded_properties(None) == {}
    assert decoded_properties("null") == {}
    assert decoded_properties("[1, 2]") == {}  # not properties at all
