"""ISO 19115 metadata of an exported layer, encoded per ISO 19139 (``gmd``/``gco``), with lxml.

One record per layer, not one per package: ISO 19115 describes one dataset, and each
layer has its own extent, dates and lineage (source file, its sha256, the approving
decision). The national spatial data infrastructure and catalogue software (GeoNetwork,
pycsw) take these records as they are.

What goes in (Vietnamese first): title and abstract from the layer model, language
``vie`` and character set ``utf8``, the contact (the province land office, from the
``export_contact_*`` settings), creation date (the upload) and publication date, the
reference system by EPSG code, the extent as a geographic bounding box in WGS 84, and
the lineage: the uploaded file's name and sha256, the upload, the approving decision
when the version has one, the publication.

Keywords (``descriptiveKeywords``), so a catalogue finds the layer by what it holds:

- *theme*: the layer's title in Vietnamese and English; the ISO topic category is
  ``planningCadastre`` (``topicCategory``);
- *theme, from a thesaurus*: the land-use types the layer holds, named as the national
  list of land-use codes names them (``seeds/land_use_codes.csv``), with that list cited
  as the thesaurus (`LAND_USE_THESAURUS`: Thông tư 08/2024/TT-BTNMT);
- *place*: the district, the province, Việt Nam.

A planning project's layers (`gisportal.outputs.export.project`) name the land-use
functions of its lots the same way, from the functions of QCVN 01:2021/BXD
(`ZONING_THESAURUS`, ``seeds/zoning_functions.csv``), and are titled with the project's
name.

The approving decision, when the layer has one, is cited in the resource's citation:
its number as an identifier whose authority is the decision itself (title "Quyết định
số … ngày … của …", dated), and in words in ``otherCitationDetails``; the lineage keeps
it as a process step. A layer built from the catalogue rather than from an upload (a
project's boundary) has no source file: its lineage says where it comes from instead.

Use and licence (``resourceConstraints``, ``MD_LegalConstraints``): the portal's
open-data licence — the ``export_licence`` / ``export_licence_url`` settings when the
installation has them, else `DEFAULT_LICENCE`, Creative Commons Attribution 4.0 (use and
share freely, naming the source: what the published plans are for; docs/export.md). A
package carrying personal data says the opposite: access restricted, handled under
Nghị định 13/2023/NĐ-CP on personal data protection, no licence to republish.

The records validate against the ISO 19139 schemas (tests/test_export.py, with the
XSDs pycsw ships, in ``tests/vendor/iso19139``): element order matters there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lxml import etree

__all__ = ["DEFAULT_LICENCE", "LAND_USE_THESAURUS", "NS", "ZONING_THESAURUS", "Contact",
           "LayerMetadata", "Licence", "Thesaurus", "metadata_xml"]

GMD = "http://www.isotc211.org/2005/gmd"
GCO = "http://www.isotc211.org/2005/gco"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
#: The namespaces of the records (for XPath in callers and tests).
NS = {"gmd": GMD, "gco": GCO}
_SCHEMA_LOCATION = f"{GMD} http://schemas.opengis.net/iso/19139/20070417/gmd/gmd.xsd"
_CODELISTS = "http://standards.iso.org/iso/19139/resources/gmxCodelists.xml"
_LANGUAGE_CODES = "http://www.loc.gov/standards/iso639-2/"


@dataclass(frozen=True)
class Contact:
    """The organisation answering for the data (the province's land office)."""

    organisation: str
    email: str = ""
    administrative_area: str = ""
    country: str = "Việt Nam"


@dataclass(frozen=True)
class Licence:
    """The licence the data is published under."""

    name: str
    url: str = ""


#: The open-data licence when the settings name none: attribution only, so anyone may use
#: and republish the plans, naming the province as the source.
DEFAULT_LICENCE = Licence("Creative Commons Ghi công 4.0 Quốc tế (CC BY 4.0)",
                          "https://creativecommons.org/licenses/by/4.0/")


@dataclass(frozen=True)
class Thesaurus:
    """A controlled vocabulary keywords are taken from, as ISO 19115 cites it."""

    title: str
    date: str  # ISO date of its publication
    identifier: str = ""


#: The list of land-use codes and names the land-use keywords come from.
LAND_USE_THESAURUS = Thesaurus(
    "Danh mục loại đất, mã ký hiệu loại đất — Thông tư số 08/2024/TT-BTNMT của Bộ Tài "
    "nguyên và Môi trường (Luật Đất đai 2024) / Land-use types and codes, Circular "
    "08/2024/TT-BTNMT", "2024-07-31", "08/2024/TT-BTNMT")
#: The land-use functions of construction and urban zoning plans a project's lots use.
ZONING_THESAURUS = Thesaurus(
    "Chức năng sử dụng đất trong đồ án quy hoạch — QCVN 01:2021/BXD Quy chuẩn kỹ thuật "
    "quốc gia về Quy hoạch xây dựng (Thông tư số 01/2021/TT-BXD) / Land-use functions of "
    "zoning plans, national technical regulation QCVN 01:2021/BXD", "2021-05-19",
    "QCVN 01:2021/BXD")


@dataclass(frozen=True)
class LayerMetadata:
    """What one record says about one exported layer version."""

    identifier: str
    title: str
    abstract: str
    created: str  # ISO 8601 date-time of the upload
    published: str | None  # ISO 8601 date-time of the (last) publication
    stamp: str  # ISO 8601 date-time of the export (the record's date)
    crs_code: str  # e.g. "EPSG:5899"
    crs_name: str
    bbox_lonlat: tuple[float, float, float, float] | None  # west, south, east, north
    feature_count: int
    #: The uploaded file the layer was read from (None: built from the catalogue).
    source_name: str | None
    source_sha256: str | None
    uploaded_by: str
    decision: Mapping[str, Any] | None
    formats: Sequence[tuple[str, str]]  # (format name, version)
    contact: Contact
    #: Land-use keywords: (code, name) of the land-use types the layer holds.
    land_uses: Sequence[tuple[str, str]] = ()
    #: Place keywords, most specific first (district, province, country).
    places: Sequence[str] = ()
    #: Theme keywords (the layer's titles).
    themes: Sequence[str] = ()
    licence: Licence = DEFAULT_LICENCE
    #: The package carries personal data (``--include-personal``): restricted, no licence.
    personal: bool = False
    #: The vocabulary `land_uses` come from.
    land_use_thesaurus: Thesaurus = LAND_USE_THESAURUS
    #: The lineage statement of a layer without a source file (where it comes from).
    lineage: str = ""


def _gmd(tag: str) -> str:
    return f"{{{GMD}}}{tag}"


def _sub(parent: etree._Element, *path: str) -> etree._Element:
    """Append the chain of ``gmd`` elements `path` under `parent`; return the last."""
    for tag in path:
        parent = etree.SubElement(parent, _gmd(tag))
    return parent


def _text(parent: etree._Element, tag: str, value: str) -> etree._Element:
    """``<gmd:tag><gco:CharacterString>value</gco:CharacterString></gmd:tag>``."""
    el = _sub(parent, tag)
    etree.SubElement(el, f"{{{GCO}}}CharacterString").text = value
    return el


def _typed(parent: etree._Element, tag: str, gco_type: str, value: str) -> etree._Element:
    el = _sub(parent, tag)
    etree.SubElement(el, f"{{{GCO}}}{gco_type}").text = value
    return el


def _code(parent: etree._Element, tag: str, codelist: str, value: str) -> etree._Element:
    """A codelist value, e.g. ``<gmd:MD_ScopeCode codeListValue="dataset">``."""
    el = _sub(parent, tag)
    code = etree.SubElement(el, _gmd(codelist), codeList=f"{_CODELISTS}#{codelist}",
                            codeListValue=value)
    code.text = value
    return el


def _language(parent: etree._Element, tag: str) -> None:
    el = _sub(parent, tag)
    code = etree.SubElement(el, _gmd("LanguageCode"), codeList=_LANGUAGE_CODES,
                            codeListValue="vie")
    code.text = "vie"


def _contact(parent: etree._Element, tag: str, contact: Contact) -> None:
    party = _sub(parent, tag, "CI_ResponsibleParty")
    _text(party, "organisationName", contact.organisation)
    address = _sub(party, "contactInfo", "CI_Contact", "address", "CI_Address")
    if contact.administrative_area:
        _text(address, "administrativeArea", contact.administrative_area)
    _text(address, "country", contact.country)
    if contact.email:
        _text(address, "electronicMailAddress", contact.email)
    _code(party, "role", "CI_RoleCode", "pointOfContact")


def _date(parent: etree._Element, when: str, kind: str) -> None:
    ci_date = _sub(parent, "date", "CI_Date")
    _typed(ci_date, "date", "DateTime", _date_time(when) or when)
    _code(ci_date, "dateType", "CI_DateTypeCode", kind)


def _date_time(value: str) -> str | None:
    """An ISO date or date-time as ``gco:DateTime`` text; None when it is neither (a
    decision date typed as "30/06/2023" stays in the text, not in a typed element)."""
    text = value.strip().removesuffix("Z")
    try:
        if "T" in text:
            return datetime.fromisoformat(text).strftime("%Y-%m-%dT%H:%M:%S")
        return date.fromisoformat(text).strftime("%Y-%m-%dT00:00:00")
    except ValueError:
        return None


def _decision_citation(citation: etree._Element, decision: Mapping[str, Any]) -> None:
    """The approving decision in the resource's citation (after its dates): its number as
    an identifier whose authority is the decision, dated when the date is one."""
    when = _date_time(str(decision.get("date") or ""))
    ident = _sub(citation, "identifier", "MD_Identifier")
    if when:
        authority = _sub(ident, "authority", "CI_Citation")
        _text(authority, "title", _decision_text(decision))
        ci_date = _sub(authority, "date", "CI_Date")
        _typed(ci_date, "date", "Date", when[:10])
        _code(ci_date, "dateType", "CI_DateTypeCode", "publication")
    _text(ident, "code", str(decision.get("number") or "?"))


def _decision_text(decision: Mapping[str, Any]) -> str:
    parts = [f"Quyết định số {decision.get('number') or '?'}"]
    if decision.get("date"):
        parts.append(f"ngày {decision['date']}")
    if decision.get("authority"):
        parts.append(f"của {decision['authority']}")
    return " ".join(parts)


def _keywords(parent: etree._Element, words: Sequence[str], kind: str,
              thesaurus: Thesaurus | None = None) -> None:
    """One ``MD_Keywords`` block: `words` of the keyword type `kind`, from `thesaurus`."""
    if not words:
        return
    block = _sub(parent, "descriptiveKeywords", "MD_Keywords")
    for word in words:
        _text(block, "keyword", word)
    _code(block, "type", "MD_KeywordTypeCode", kind)
    if thesaurus is not None:
        citation = _sub(block, "thesaurusName", "CI_Citation")
        _text(citation, "title", thesaurus.title)
        ci_date = _sub(citation, "date", "CI_Date")
        _typed(ci_date, "date", "Date", thesaurus.date)
        _code(ci_date, "dateType", "CI_DateTypeCode", "publication")
        if thesaurus.identifier:
            _text(_sub(citation, "identifier", "MD_Identifier"), "code", thesaurus.identifier)


def _constraints(parent: etree._Element, meta: LayerMetadata) -> None:
    """``resourceConstraints``: the open-data licence, or the restriction of personal data."""
    legal = _sub(parent, "resourceConstraints", "MD_LegalConstraints")
    if meta.personal:
        _text(legal, "useLimitation",
              "Gói có dữ liệu cá nhân (tên, số giấy tờ, địa chỉ của người sử dụng đất): chỉ "
              "dùng cho việc đã được giao, không công bố, không chia sẻ lại. / Contains "
              "personal data: for the assigned task only; not to be published or shared.")
        _code(legal, "accessConstraints", "MD_RestrictionCode", "otherRestrictions")
        _code(legal, "useConstraints", "MD_RestrictionCode", "otherRestrictions")
        _text(legal, "otherConstraints",
              "Dữ liệu cá nhân được xử lý theo Nghị định số 13/2023/NĐ-CP về bảo vệ dữ liệu "
              "cá nhân. / Personal data, handled under Decree 13/2023/ND-CP on personal "
              "data protection.")
        return
    licence = meta.licence.name + (f" — {meta.licence.url}" if meta.licence.url else "")
    _text(legal, "useLimitation",
          f"Dữ liệu mở: được sử dụng và chia sẻ lại, ghi rõ nguồn "
          f"«{meta.contact.organisation or 'gisportal'}». / Open data: free to use and "
          f"share, naming the source. Giấy phép / Licence: {licence}")
    _code(legal, "useConstraints", "MD_RestrictionCode", "license")
    _text(legal, "otherConstraints", licence)


def metadata_xml(meta: LayerMetadata) -> bytes:
    """The ISO 19139 record of one layer, as UTF-8 XML with a declaration."""
    root = etree.Element(_gmd("MD_Metadata"), nsmap={"gmd": GMD, "gco": GCO, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", _SCHEMA_LOCATION)
    _text(root, "fileIdentifier", meta.identifier)
    _language(root, "language")
    _code(root, "characterSet", "MD_CharacterSetCode", "utf8")
    _code(root, "hierarchyLevel", "MD_ScopeCode", "dataset")
    _contact(root, "contact", meta.contact)
    _typed(root, "dateStamp", "DateTime", _date_time(meta.stamp) or meta.stamp)
    _text(root, "metadataStandardName", "ISO 19115:2003/19139")
    _text(root, "metadataStandardVersion", "1.0")
    rs_id = _sub(root, "referenceSystemInfo", "MD_ReferenceSystem", "referenceSystemIdentifier",
                 "RS_Identifier")
    authority, _, number = meta.crs_code.partition(":")
    _text(rs_id, "code", number or meta.crs_code)
    _text(rs_id, "codeSpace", authority if number else "")

    ident = _sub(root, "identificationInfo", "MD_DataIdentification")
    citation = _sub(ident, "citation", "CI_Citation")
    _text(citation, "title", meta.title)
    _date(citation, meta.created, "creation")
    if meta.published:
        _date(citation, meta.published, "publication")
    if meta.decision:
        _decision_citation(citation, meta.decision)
        _text(citation, "otherCitationDetails",
              f"Phê duyệt theo {_decision_text(meta.decision)} / Approved by decision "
              f"{meta.decision.get('number') or '?'}")
    _text(ident, "abstract", meta.abstract)
    _contact(ident, "pointOfContact", meta.contact)
    # ISO 19139 order: descriptiveKeywords, then resourceConstraints, then language.
    _keywords(ident, list(meta.themes), "theme")
    _keywords(ident, [f"{name} ({code})" for code, name in meta.land_uses], "theme",
              meta.land_use_thesaurus)
    _keywords(ident, list(meta.places), "place")
    _constraints(ident, meta)
    _language(ident, "language")
    _code(ident, "characterSet", "MD_CharacterSetCode", "utf8")
    topic = _sub(ident, "topicCategory", "MD_TopicCategoryCode")
    topic.text = "planningCadastre"
    if meta.bbox_lonlat is not None:
        box = _sub(ident, "extent", "EX_Extent", "geographicElement",
                   "EX_GeographicBoundingBox")
        west, south, east, north = meta.bbox_lonlat
        for tag, value in (("westBoundLongitude", west), ("eastBoundLongitude", east),
                           ("southBoundLatitude", south), ("northBoundLatitude", north)):
            _typed(box, tag, "Decimal", f"{value:.7f}")

    distribution = _sub(root, "distributionInfo", "MD_Distribution")
    for name, version in meta.formats:
        fmt = _sub(distribution, "distributionFormat", "MD_Format")
        _text(fmt, "name", name)
        _text(fmt, "version", version)

    quality = _sub(root, "dataQualityInfo", "DQ_DataQuality")
    _code(_sub(quality, "scope", "DQ_Scope"), "level", "MD_ScopeCode", "dataset")
    lineage = _sub(quality, "lineage", "LI_Lineage")
    if meta.source_name is None:
        statement = meta.lineage or f"{meta.feature_count} đối tượng, {meta.crs_code}."
        steps = []
    else:
        statement = (f"Tải lên gisportal từ tệp «{meta.source_name}» (sha256 "
                     f"{meta.source_sha256}) bởi {meta.uploaded_by} lúc {meta.created}; "
                     f"{meta.feature_count} đối tượng, chuẩn hoá về {meta.crs_name} "
                     f"({meta.crs_code}) và kiểm tra hình học, thuộc tính, topo trước khi "
                     f"công bố. / Uploaded from «{meta.source_name}» (sha256 "
                     f"{meta.source_sha256}); normalised to {meta.crs_code} and validated "
                     "before publication.")
        steps = [(f"Tải lên và kiểm tra tệp «{meta.source_name}»", meta.created)]
    if meta.decision:
        statement += f" Phê duyệt: {_decision_text(meta.decision)}."
    _text(lineage, "statement", statement)
    if meta.decision:
        steps.append((f"Phê duyệt: {_decision_text(meta.decision)}",
                       str(meta.decision.get("date") or "")))
    if meta.published:
        steps.append(("Công bố trên cổng thông tin quy hoạch", meta.published))
    for description, when in steps:
        step = _sub(lineage, "processStep", "LI_ProcessStep")
        _text(step, "description", description)
        stamp = _date_time(when)
        if stamp:
            _typed(step, "dateTime", "DateTime", stamp)
    if meta.source_name is None:
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    source = _sub(lineage, "source", "LI_Source")
    _text(source, "description", f"{meta.source_name} (sha256 {meta.source_sha256})")
    source_citation = _sub(source, "sourceCitation", "CI_Citation")
    _text(source_citation, "title", meta.source_name)
    _date(source_citation, meta.created, "creation")
    _text(_sub(source_citation, "identifier", "MD_Identifier"), "code",
          f"sha256:{meta.source_sha256}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
