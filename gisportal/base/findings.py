"""Findings and the validation report (JSON, GeoJSON), from the rule catalogue.

The catalogue (``layers/rules.json``) gives every rule a stable code, a severity and
messages in Vietnamese and English. Checks only say *which* rule fired, on which
feature, where, with which values; the words come from the catalogue.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from gisportal.base.resources import data_dir

__all__ = ["Rule", "rules", "rules_markdown", "Finding", "Report", "SEVERITIES"]

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Rule:
    code: str
    family: str
    severity: str
    vi: str
    en: str
    doc: str


@cache
def rules() -> dict[str, Rule]:
    """The rule catalogue by code, merged from ``layers/rules/*.json`` (one file a family)."""
    out: dict[str, Rule] = {}
    for path in sorted((data_dir("layers") / "rules").glob("*.json")):
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        for code, r in doc["rules"].items():
            where = f"layers/rules/{path.name}: {code}"
            if r["severity"] not in SEVERITIES:
                raise ValueError(f"{where}: unknown severity {r['severity']}")
            if code in out:
                raise ValueError(f"{where}: code already defined in another file")
            out[code] = Rule(code, r["family"], r["severity"], r["vi"], r["en"],
                             r.get("doc", ""))
    return out


def rules_markdown() -> str:
    """The catalogue as a Markdown table, by family then code (docs are built from it)."""
    lines = ["| code | family | severity | meaning |", "| --- | --- | --- | --- |"]
    for r in sorted(rules().values(), key=lambda r: (r.family, r.code)):
        lines.append(f"| `{r.code}` | {r.family} | {r.severity} | {r.doc} |")
    return "\n".join(lines)


class _Lenient(string.Formatter):
    """Leave unknown placeholders visible instead of failing: a report must render."""

    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "{" + str(key) + "}") if isinstance(key, str) else super(
        ).get_value(key, args, kwargs)


_FMT = _Lenient()


@dataclass
class Finding:
    """One problem (or fact) about the input, located and explained.

    ``row`` is the 0-based row in the source file (None for file-level findings);
    ``key`` holds the feature's key fields as read; ``location`` is a GeoJSON
    geometry in WGS 84 (lon, lat axis order) or None.
    """

    rule: str
    row: int | None = None
    key: Mapping[str, Any] = field(default_factory=dict)
    location: dict[str, Any] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: str | None = None  # None: the catalogue's

    @property
    def level(self) -> str:
        return self.severity or rules()[self.rule].severity

    def message(self, lang: str = "vi") -> str:
        rule = rules()[self.rule]
        return _FMT.format(rule.vi if lang == "vi" else rule.en, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.level,
            "feature": {"row": self.row, "key": dict(self.key)},
            "message": self.message("vi"),
            "message_en": self.message("en"),
            "location": self.location,
            "detail": {k: v for k, v in self.params.items()},
        }


@dataclass
class Report:
    """All findings about one input, plus what was read and how."""

    source: str
    kind: str
    feature_count: int = 0
    findings: list[Finding] = field(default_factory=list)
    read: dict[str, Any] = field(default_factory=dict)  # CRS, encoding, field mapping
    repair: dict[str, Any] | None = None  # the changes made, when repair was asked for

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings) -> None:
        self.findings.extend(findings)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.level == severity)

    @property
    def has_errors(self) -> bool:
        return any(f.level == "error" for f in self.findings)

    def summary(self) -> dict[str, Any]:
        by_rule = Counter(f.rule for f in self.findings)
        # A rule may fire at another severity than its catalogue default (a gap is an
        # error in a plan, a warning between parcels): report the most severe seen.
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        worst: dict[str, str] = {}
        for f in self.findings:
            if f.rule not in worst or rank[f.level] < rank[worst[f.rule]]:
                worst[f.rule] = f.level
        return {
            "source": self.source,
            "kind": self.kind,
            "features": self.feature_count,
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "infos": self.count("info"),
            "publishable": not self.has_errors,
            "by_rule": {code: {"count": n, "severity": worst[code]}
                        for code, n in sorted(by_rule.items())},
        }

    def to_dict(self) -> dict[str, Any]:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        findings = sorted(self.findings, key=lambda f: (order[f.level], f.row is not None,
                                                       f.row or 0, f.rule))
        out = {"summary": self.summary(), "read": self.read,
               "findings": [f.to_dict() for f in findings]}
        if self.repair is not None:
            out["repair"] = self.repair
        return out

    def to_geojson(self) -> dict[str, Any]:
        """Findings as a FeatureCollection (WGS 84), one feature per finding."""
        feats = []
        for f in self.findings:
            d = f.to_dict()
            geom = d.pop("location")
            feats.append({"type": "Feature", "geometry": geom, "properties": {
                "rule": d["rule"], "severity": d["severity"], "row": f.row,
                "key": json.dumps(dict(f.key), ensure_ascii=False),
                "message": d["message"], "message_en": d["message_en"]}})
        return {"type": "FeatureCollection", "features": feats}
