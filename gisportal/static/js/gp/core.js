/* gisportal resident pages, shared part: the page's configuration and strings, DOM
 * helpers and the number formats. Loaded first; the other gp/*.js files add to
 * window.GP (map.js: vector-tile styles and map behaviour; panel.js: the look-up
 * answer; search.js: the search box; district.js: the district page's start-up).
 * Text that comes from the API is always put in the page with textContent, never
 * innerHTML: attribute values may contain HTML. */
(function () {
  "use strict";
  var cfgEl = document.getElementById("gp-config");
  var CFG = cfgEl ? JSON.parse(cfgEl.textContent) : {config: {}, strings: {}};
  var S = CFG.strings || {};
  var LU = CFG.land_use || {};
  var UNKNOWN = "#C8C8C8";

  function t(key) { return (S[key] || [key])[0]; }
  function t2(key) { return (S[key] || [key, ""])[1]; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  /* A label in the page language with its twin in small type. */
  function label(key) {
    var span = el("span", "lbl", t(key));
    span.appendChild(document.createTextNode(" "));
    span.appendChild(el("small", "alt", t2(key)));
    return span;
  }

  function primaryCode(value) {
    var parts = String(value || "").toUpperCase().split(/\s*[+,;\/]\s*/);
    for (var i = 0; i < parts.length; i++) {
      if (LU[parts[i]]) { return parts[i]; }
    }
    return null;
  }

  function colorOf(value) {
    var c = primaryCode(value);
    return c ? LU[c][0] : UNKNOWN;
  }

  function fmtArea(v) {
    if (v === null || v === undefined || v === "") { return "—"; }
    var n = Number(v);
    return (isNaN(n) ? String(v) : n.toLocaleString(CFG.lang === "en" ? "en-GB" : "vi-VN",
      {maximumFractionDigits: 1})) + " m²";
  }

  function fmtShare(v) {
    var n = Number(v);
    return isNaN(n) ? "" : (n * 100).toLocaleString(CFG.lang === "en" ? "en-GB" : "vi-VN",
      {maximumFractionDigits: 1}) + " %";
  }

  function row(dl, key, value) {
    var dt = el("dt"); dt.appendChild(label(key)); dl.appendChild(dt);
    var dd = el("dd");
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = value; }
    dl.appendChild(dd);
    return dd;
  }

  function chip(code, name, color, extra) {
    var c = el("span", "gp-chip");
    var sw = el("span", "sw"); sw.style.background = /^#[0-9a-fA-F]{3,8}$/.test(color || "") ? color : UNKNOWN;
    c.appendChild(sw);
    c.appendChild(el("b", null, code || "?"));
    if (name) { c.appendChild(el("span", "nm", name)); }
    if (extra) { c.appendChild(el("span", "ex", extra)); }
    return c;
  }

  function luName(code, fallback) {
    var parts = String(code || "").toUpperCase().split(/\s*[+,;\/]\s*/);
    var i = CFG.lang === "en" ? 2 : 1;
    var names = parts.map(function (p) { return LU[p] ? LU[p][i] : p; });
    return names.join(" + ") || fallback || "";
  }


  window.GP = {
    config: CFG, UNKNOWN: UNKNOWN, t: t, t2: t2, el: el, label: label,
    primaryCode: primaryCode, colorOf: colorOf, fmtArea: fmtArea, fmtShare: fmtShare,
    row: row, chip: chip, luName: luName,
    /* The district page's shared state: the map, the look-up marker, the selected
     * parcel's key and the answer panel. */
    state: {map: null, marker: null, selected: null, result: null}
  };
})();
