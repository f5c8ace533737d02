"""Step three of the data flow: validate a normalised layer into a :class:`Report`.

The report starts with what reading decided (encoding, CRS, reader notes), then runs
every check of :data:`~gisportal.pipeline.validation.checks.CHECKS`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gisportal.base import crs as vncrs
from gisportal.base.findings import Finding, Report, rules
from gisportal.pipeline.normalise import NormalisedLayer
from gisportal.pipeline.validation.annual import ANNUAL_CHECKS
from gisportal.pipeline.validation.checks import CHECKS as FEATURE_CHECKS
from gisportal.pipeline.validation.context import ValidationContext
from gisportal.pipeline.validation.topology import TOPOLOGY_CHECKS
from gisportal.pipeline.validation.zoning import ZONING_CHECKS

__all__ = ["validate", "Report", "Finding", "rules", "ValidationContext"]

#: Every check the engine runs, in order: per-feature rules, topology, then the rules of
#: one kind (annual plans: years, projects outside the district; zoning lots and red
#: lines: indicators, overlaps, gaps, widths; each a no-op for other kinds).
CHECKS = FEATURE_CHECKS + TOPOLOGY_CHECKS + ANNUAL_CHECKS + ZONING_CHECKS

#: Below this detection confidence the encoding choice is a warning, not an info.
ENCODING_CONFIDENCE_WARN = 0.6


#: How encodings are named in the report's messages.
_ENCODING_NAMES = {"utf-8": "UTF-8", "cp1258": "Windows-1258", "tcvn3": "TCVN3", "vni": "VNI"}


def _read_findings(src) -> list[Finding]:
    """Findings about how the file was read: the text encoding, then the reader's notes.

    An encoding the file or the user named (``--encoding``, a ``.cpg``, a DXF header) is
    READ-ENCODING-GIVEN, saying where it came from; a format that is UTF-8 by definition
    (GeoPackage, GeoJSON) says so in ``read.encoding_origin`` only, as a finding on every
    such report would be noise; only one that was
    worked out from the text is READ-ENCODING-DETECTED (or -UNCERTAIN): "detected
    because the file did not say" must not be claimed of a file that did.
    """
    out = []
    det = getattr(src, "encoding_detection", None)
    origin = getattr(src, "encoding_origin", None)
    encoding = getattr(src, "encoding", None)
    if origin is not None and origin.origin == "format":
        pass  # UTF-8 by definition (GeoPackage, GeoJSON…): said in read.encoding_origin only
    elif origin is not None and origin.origin != "detected" and encoding is not None:
        out.append(Finding("READ-ENCODING-GIVEN", params={
            "encoding": encoding, "encoding_name": _ENCODING_NAMES.get(encoding, encoding),
            "origin": origin.origin,
            "origin_vi": origin.vi, "origin_en": origin.en}))
    elif det is not None:
        rule = ("READ-ENCODING-UNCERTAIN" if det.confidence < ENCODING_CONFIDENCE_WARN
                else "READ-ENCODING-DETECTED")
        out.append(Finding(rule, params={"encoding": det.encoding,
                                         "confidence": f"{det.confidence:.0%}",
                                         "reason": det.reason,
                                         "examples": [list(e) for e in det.examples[:3]]}))
    known = rules()
    for note in src.notes:
        if note.code in known:
            out.append(Finding(note.code, row=note.row, severity=note.severity, params={
                "row": note.row, "message_vi": note.message_vi, "message_en": note.message_en}))
        else:
            out.append(Finding("READ-NOTE", row=note.row, severity=note.severity, params={
                "note": note.code, "message_vi": note.message_vi,
                "message_en": note.message_en}))
    return out


def validate(src, norm: NormalisedLayer, ctx: ValidationContext | None = None) -> Report:
    """Run every check; the report also records how the file was read.

    ``ctx`` carries the district's boundaries for the topology and commune checks;
    without it those checks find nothing to compare against.
    """
    ctx = ctx or ValidationContext()
    report = Report(source=src.source_name, kind=norm.model.kind,
                    feature_count=len(norm.frame))
    report.read = {
        "driver": src.driver,
        "layer": src.layer,
        "layers_available": list(src.layers_available),
        "sha256": src.sha256,
        "encoding": src.encoding,
        "encoding_origin": None if getattr(src, "encoding_origin", None) is None
        else src.encoding_origin.origin,
        "encoding_detection": None if src.encoding_detection is None else {
            "encoding": src.encoding_detection.encoding,
            "confidence": round(src.encoding_detection.confidence, 3),
            "reason": src.encoding_detection.reason,
        },
        **norm.read_info(),
    }
    report.extend(_read_findings(src))
    choice = norm.crs_choice
    if choice.origin == "inferred":
        report.add(Finding("CRS-INFERRED", params={"reason": choice.reason_en,
                                                   "reason_vi": choice.reason_vi,
                                                   "crs": vncrs.describe(choice.crs)}))
    else:
        report.add(Finding("CRS-DECLARED", params={
            "crs": vncrs.describe(choice.crs), "store_crs": vncrs.describe(vncrs.store_crs()),
            "origin": choice.origin}))
    report.extend(norm.findings)
    # The per-feature checks run in a second thread while topology runs here: both spend
    # their time in GEOS and numpy, which release the GIL, so two cores share the work.
    # Topology allocates the most, and glibc gives each thread its own heap: in this
    # thread it reuses what reading and normalising freed (a million parcels: 100 MB
    # less at the peak). Findings keep the order of CHECKS whatever finishes first, and
    # a failing per-feature check is raised before a failing topology check, as when
    # they ran here.
    _ = norm.valid  # shared by both threads: compute it once, before they start
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gisportal-checks") as pool:
        futures = {check: pool.submit(check, norm, ctx) for check in CHECKS
                   if check not in TOPOLOGY_CHECKS}
        failed: Exception | None = None
        try:
            results = {check: check(norm, ctx) for check in CHECKS if check not in futures}
        except Exception as exc:  # noqa: BLE001 - raised below, after the feature checks
            failed = exc
        done = {check: f.result() for check, f in futures.items()}
        if failed is not None:
            raise failed
        results.update(done)
    for check in CHECKS:
        report.extend(results[check])
    return report
