"""The validation report as a self-contained HTML page (no external assets)."""

from __future__ import annotations

import json

from jinja2 import Environment, PackageLoader, select_autoescape

from gisportal.findings import Report, rules

__all__ = ["report_html"]

_env = Environment(loader=PackageLoader("gisportal", "templates"),
                   autoescape=select_autoescape(["html"]))


def report_html(report: Report) -> str:
    """Render the report: summary by rule and severity, and every finding."""
    data = report.to_dict()
    return _env.get_template("report.html").render(
        summary=data["summary"], findings=data["findings"], read=data["read"],
        rules=rules(), read_json=json.dumps(data["read"], ensure_ascii=False, indent=1))
