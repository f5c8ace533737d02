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

  /* A label in the page language. Residents' pages are in one language: no English
   * twin on a Vietnamese page (the toggle gives the English page), so t2 is only for
   * a page that asks for the twin (CFG.twins). */
  function label(key) {
    var span = el("span", "lbl", t(key));
    if (CFG.twins) {
      span.appendChild(document.createTextNode(" "));
      span.appendChild(el("small", "alt", t2(key)));
    }
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

  /* Numbers as gisportal.base.formats writes them, so the panel says what the parcel
   * sheet says: Vietnamese groups thousands with a dot and writes the decimal comma
   * (1.234,5), English the reverse; `decimals` digits always, rounded half up on the
   * value as written (2.675 → 2,68), as a surveyor rounds; missing values are "—". */
  var MISSING = "—";
  function missing(v) {
    return v === null || v === undefined || v === "" || (typeof v === "number" && isNaN(v));
  }
  function fmtNumber(v, decimals, grouping) {
    if (missing(v)) { return MISSING; }
    var n = Number(v), d = decimals || 0;
    if (!isFinite(n)) { return String(v); }
    var neg = n < 0, a = Math.abs(n);
    // "2.675e2" is 267.5 exactly: rounding the decimal text, not the binary float.
    var r = Math.round(Number(a + "e" + d));
    var txt = isFinite(r) ? (Number(r + "e-" + d)).toFixed(d) : a.toFixed(d);
    var parts = txt.split("."), whole = parts[0], frac = parts[1] || "";
    var en = CFG.lang === "en";
    if (grouping !== false) {
      whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, en ? "," : ".");
    }
    var out = whole + (frac ? (en ? "." : ",") + frac : "");
    return (neg && /[1-9]/.test(out) ? "-" : "") + out;
  }

  function fmtArea(v) {
    return missing(v) ? MISSING : fmtNumber(v, 1) + " m²";
  }

  /* A fraction of one as a percentage: 0.125 → "12,5 %" (Vietnamese writes a space
   * before the sign), "12.5%" in English. */
  function fmtShare(v) {
    if (missing(v) || isNaN(Number(v))) { return MISSING; }
    var txt = fmtNumber(Number(v) * 100, 1);
    return CFG.lang === "en" ? txt + "%" : txt + " %";
  }

  /* An ISO date (2024-03-15, or a timestamp) → "15/03/2024"; English spells the month
   * ("15 Mar 2024"); text that is no ISO date is shown as it is. */
  var MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                   "Nov", "Dec"];
  function fmtDate(v) {
    if (missing(v)) { return MISSING; }
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(v).trim());
    if (!m) { return String(v); }
    if (CFG.lang === "en") { return Number(m[3]) + " " + MONTHS_EN[Number(m[2]) - 1] + " " + m[1]; }
    return m[3] + "/" + m[2] + "/" + m[1];
  }

  /* An API error's sentence in the page's language, without the [where] tag meant for
   * staff: message_vi on a Vietnamese page (a generic Vietnamese sentence when the
   * error has none), never the English message. */
  function errorText(err) {
    if (!err) { return t("error_generic"); }
    var msg = CFG.lang === "en" ? (err.message_en || err.message) : err.message_vi;
    return msg || t("error_generic");
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

  /* The map's controls in the page's language (words from gisportal.web.maps
   * CONTROL_WORDS): Leaflet's zoom buttons, layer switcher, popups' close button and
   * attribution title, the scale in metres only (feet and miles are no Vietnamese
   * measure), the locate control's error, and
   * leaflet-measure, which has no Vietnamese locale: its English phrases are rewritten
   * in the text and titles it draws, in the control and in its result popups, as it
   * draws them; its lengths and areas are written by fmtNumber, as the panel writes
   * numbers (measureNumbers), and its point coordinates, which its templates print
   * with a decimal point whatever the options say, are rewritten with the page's
   * decimal sign and hemispheres (coords). */
  /* Title (and name to a screen reader) every element of `box` matching `selector`. */
  function titleAll(box, selector, text) {
    if (!box || !text) { return; }
    Array.prototype.forEach.call(box.querySelectorAll(selector), function (e) {
      e.title = text; e.setAttribute("aria-label", text);
    });
  }

  /* leaflet-measure's lengths and areas through fmtNumber: "1.234,5 m (1,23 km)",
   * "115,2 m² (0,01 ha)" on a Vietnamese page, as the panel and the parcel sheet write
   * them (its own numberFormat rounds the binary float, fmtNumber the decimal text). */
  function measureNumbers(measure) {
    var o = measure.options || {}, units = o.units || {};
    function one(v, u) { return fmtNumber(v * u.factor, u.decimals || 0) + " " + u.display; }
    function both(v, primary, secondary) {
      var p = units[primary], s = units[secondary];
      if (!p || !p.factor) { return fmtNumber(v, 0); }
      return one(v, p) + (s && s.factor ? " (" + one(v, s) + ")" : "");
    }
    measure._getMeasurementDisplayStrings = function (m) {
      return {lengthDisplay: both(m.length, o.primaryLengthUnit, o.secondaryLengthUnit),
              areaDisplay: both(m.area, o.primaryAreaUnit, o.secondaryAreaUnit)};
    };
  }

  /* A point's coordinates as leaflet-measure prints them (a <p> around a
   * span.coorddivider: 11° 42' 15.37" N / 108° 20' 10.00" E, or 11.703456 /
   * 108.336111), with the page's decimal sign and hemispheres: 11° 42' 15,37" B /
   * 108° 20' 10,00" Đ. Done once per paragraph (marked): the control draws new ones. */
  function coords(p, decPoint, hemispheres) {
    if (p.hasAttribute("data-gp-coords")) { return; }
    p.setAttribute("data-gp-coords", "");
    for (var c = p.firstChild; c; c = c.nextSibling) {
      if (c.nodeType !== 3) { continue; }
      var v = c.nodeValue;
      if (decPoint && decPoint !== ".") { v = v.replace(/(\d)\.(\d)/g, "$1" + decPoint + "$2"); }
      v = v.replace(/(["\u2033])(\s*)([NSEW])\b/g, function (all, q, sp, h) {
        return q + sp + (hemispheres[h] || h);
      });
      if (v !== c.nodeValue) { c.nodeValue = v; }
    }
  }

  function localizeMap(map, words, measure, locate) {
    if (!map || !words) { return; }
    var zc = map.zoomControl;
    if (zc && zc._zoomInButton && words.zoom_in) {
      [[zc._zoomInButton, words.zoom_in], [zc._zoomOutButton, words.zoom_out]].forEach(function (b) {
        b[0].title = b[1]; b[0].setAttribute("aria-label", b[1]);
      });
    }
    if (map.attributionControl && words.leaflet_title) {
      var a = el("a", null, "Leaflet");
      a.href = "https://leafletjs.com"; a.title = words.leaflet_title;
      map.attributionControl.setPrefix(a.outerHTML);
    }
    var lines = map.getContainer().querySelectorAll(".leaflet-control-scale-line");
    if (lines.length > 1) { lines[lines.length - 1].remove(); }
    titleAll(map.getContainer(), ".leaflet-control-layers-toggle", words.map_layers);
    map.on("popupopen", function (e) {
      titleAll(e.popup.getElement(), ".leaflet-popup-close-button", words.close);
    });
    if (locate && locate.options && words.locate_error) {
      locate.options.onLocationError = function () { window.alert(words.locate_error); };
    }
    if (!measure) { return; }
    measureNumbers(measure);
    var phrases = words.phrases || {}, hemispheres = words.hemispheres || {};
    var english = Object.keys(phrases).sort(function (x, y) { return y.length - x.length; });
    var decPoint = words.dec_point || ".";
    if (!window.MutationObserver || (!english.length && decPoint === "." &&
                                     !Object.keys(hemispheres).length)) { return; }
    var pattern = english.length ? new RegExp("\\b(" + english.map(function (w) {
      return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("|") + ")\\b", "g") : null;
    function say(text) {
      return pattern ? text.replace(pattern, function (w) { return phrases[w]; }) : text;
    }
    function walk(node) {
      if (node.nodeType === 3) {
        var t2 = say(node.nodeValue);
        if (t2 !== node.nodeValue) { node.nodeValue = t2; }
        return;
      }
      if (node.nodeType !== 1) { return; }
      if (node.tagName === "P" && node.querySelector(".coorddivider")) {
        coords(node, decPoint, hemispheres);
      }
      ["title", "aria-label"].forEach(function (name) {
        var v = node.getAttribute(name);
        if (v && say(v) !== v) { node.setAttribute(name, say(v)); }
      });
      for (var c = node.firstChild; c; c = c.nextSibling) { walk(c); }
    }
    /* Rewrites `box` (or, with `selector`, the parts of it that match) now and after
     * every change; the observer's own rewrites are skipped. */
    function watch(box, selector) {
      if (!box) { return; }
      var obs;
      function run() {
        if (selector) { Array.prototype.forEach.call(box.querySelectorAll(selector), walk); } else { walk(box); }
        if (obs) { obs.takeRecords(); }
      }
      obs = new MutationObserver(run);
      obs.observe(box, {childList: true, subtree: true, characterData: true,
                        attributes: true, attributeFilter: ["title"]});
      run();
    }
    watch(measure.getContainer ? measure.getContainer() : measure._container, null);
    watch(map.getPane("popupPane"), ".leaflet-measure-resultpopup");
  }

  window.GP = {
    config: CFG, UNKNOWN: UNKNOWN, t: t, t2: t2, el: el, label: label,
    primaryCode: primaryCode, colorOf: colorOf, fmtArea: fmtArea, fmtShare: fmtShare,
    fmtNumber: fmtNumber, fmtDate: fmtDate, errorText: errorText, localizeMap: localizeMap,
    row: row, chip: chip, luName: luName,
    /* The district page's shared state: the map, the look-up marker, the selected
     * parcel's key and the answer panel. */
    state: {map: null, marker: null, selected: null, result: null}
  };
})();
