"""The rule catalogue is complete and consistent; reports serialise as documented."""

from __future__ import annotations

import re
import string

from gisportal.base.findings import SEVERITIES, Finding, Report, rules

CODE = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)+$")


def _fields(template: str) -> set[str]:
    """Placeholders, with the language suffix dropped ({message_vi} ~ {message_en})."""
    return {re.sub(r"_(vi|en)$", "", f) for _, f, _, _ in string.Formatter().parse(template)
            if f}


def test_every_rule_is_documented_in_both_languages():
    cat = rules()
    assert len(cat) >= 15
    for code, r in cat.items():
        assert CODE.match(code), code
        assert r.severity in SEVERITIES
        assert r.vi and r.en and r.doc, code
        assert _fields(r.vi) == _fields(r.en), code


def test_finding_renders_and_serialises():
    f = Finding("CODE-UNKNOWN", row=3, key={"sheet": 1, "parcel": 4},
                location={"type": "Point", "coordinates": [108.3, 11.7]},
                params={"code": "XYZ", "value": "ONT+XYZ"})
    d = f.to_dict()
    assert d["rule"] == "CODE-UNKNOWN" and d["severity"] == "error"
    assert d["feature"] == {"row": 3, "key": {"sheet": 1, "parcel": 4}}
    assert "XYZ" in d["message"] and "XYZ" in d["message_en"]
    assert d["location"]["coordinates"] == [108.3, 11.7]


def test_missing_placeholder_does_not_break_the_report():
    assert "{code}" in Finding("CODE-UNKNOWN").message("en")


def test_report_summary_and_geojson():
    r = Report(source="x.zip", kind="parcels", feature_count=2)
    r.add(Finding("GEOM-EMPTY", row=0))
    r.add(Finding("AREA-MISMATCH", row=1, params={"declared": 1, "computed": 2, "diff_pct": 50}))
    s = r.summary()
    assert (s["errors"], s["warnings"], s["publishable"]) == (1, 1, False)
    assert s["by_rule"]["GEOM-EMPTY"] == {"count": 1, "severity": "error"}
    gj = r.to_geojson()
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 2
    assert r.to_dict()["findings"][0]["rule"] == "GEOM-EMPTY"  # errors first


def test_docs_list_every_rule_exactly_as_the_catalogue():
    """docs/validation-report.md carries the table `gisportal rules` prints."""
    from pathlib import Path

    from gisportal.base.findings import rules_markdown

    doc = (Path(__file__).parents[1] / "docs" / "validation-report.md").read_text("utf-8")
    start = doc.index("<!-- rules:start -->") + len("<!-- rules:start -->")
    table = doc[start:doc.index("<!-- rules:end -->")].strip()
    assert table == rules_markdown(), (
        "docs/validation-report.md is out of date: replace the table between the rules "
        "markers with the output of `gisportal rules`")
