/* The version comparison page: draws the changed features fetched from /api/compare.
 * One script for a district's layer and a planning project's lots: the words that
 * differ (a lot's "function" for a parcel's "land use") come in cfg.words, the
 * indicators a lot's popup lists in cfg.indicator_labels.
 *
 * A diff up to the page limit is fetched once; a bigger one is fetched for the box in
 * view after each move, and the note under the counts says how much is shown. Text
 * from the data goes into the page as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var cfg, strings, lang;

  function s(key) {
    if (cfg && cfg.words && cfg.words[key]) { return cfg.words[key]; }
    var pair = strings[key];
    return pair ? pair[0] : key;
  }

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_m, k) {
      return values[k] === undefined ? "" : String(values[k]);
    });
  }

  /* m² with one decimal; an indicator (digits given) with as many as it has, up to
   * `digits` (floors 5, density 60, floor-area ratio 2,4). */
  function number(value, digits) {
    if (value === null || value === undefined) { return "—"; }
    var opts = digits === undefined ? {minimumFractionDigits: 1, maximumFractionDigits: 1}
      : {minimumFractionDigits: 0, maximumFractionDigits: digits};
    return value.toLocaleString(lang === "en" ? "en-US" : "vi-VN", opts);
  }

  /* A code with its name ("TM — Đất thương mại dịch vụ"), as the area table names it. */
  function codeText(code) {
    if (!code) { return "—"; }
    var name = (cfg.code_names || {})[code];
    return name && name !== code ? code + " — " + name : code;
  }

  /* An API error's sentence in the page's language, without the [where] tag meant
   * for staff: message_vi on a Vietnamese page (a generic Vietnamese sentence when
   * the error has none), never the English message. */
  function errorText(err) {
    var msg = err ? (lang === "en" ? (err.message_en || err.message) : err.message_vi) : null;
    return msg || s("error_generic");
  }

  /* Leaflet's zoom buttons, attribution and popups' close button are titled in
   * English ("Zoom in", "Close popup"): the page's language; the scale in metres only (feet and miles are no Vietnamese
   * measure). */
  function localizeZoom(map) {
    if (!map) { return; }
    var zc = map.zoomControl;
    if (zc && zc._zoomInButton) {
      [[zc._zoomInButton, "zoom_in"], [zc._zoomOutButton, "zoom_out"]].forEach(function (b) {
        b[0].title = s(b[1]);
        b[0].setAttribute("aria-label", s(b[1]));
      });
    }
    if (map.attributionControl) {
      var a = document.createElement("a");
      a.href = "https://leafletjs.com"; a.title = s("leaflet_title"); a.textContent = "Leaflet";
      map.attributionControl.setPrefix(a.outerHTML);
    }
    var lines = map.getContainer().querySelectorAll(".leaflet-control-scale-line");
    if (lines.length > 1) { lines[lines.length - 1].remove(); }
    map.on("popupopen", function (e) {
      var close = e.popup.getElement().querySelector(".leaflet-popup-close-button");
      if (close) { close.title = s("close"); close.setAttribute("aria-label", s("close")); }
    });
  }

  function keyText(key) {
    if (!key) { return "—"; }
    var parts = [];
    (cfg.key_labels || []).forEach(function (pair) {
      var value = key[pair[0]];
      if (value !== null && value !== undefined) { parts.push(pair[1] + " " + value); }
    });
    return parts.join(" · ") || "—";
  }

  function popup(p) {
    var box = document.createElement("div");
    box.className = "gp-cmp-popup";
    var title = document.createElement("b");
    title.textContent = p.changes.map(function (c) { return s("cmp_type_" + c); }).join(" + ");
    box.appendChild(title);
    var dl = document.createElement("dl");
    function row(label, before, after) {
      var dt = document.createElement("dt");
      dt.textContent = label;
      var dd = document.createElement("dd");
      dd.textContent = before === after ? before : before + " → " + after;
      dl.appendChild(dt);
      dl.appendChild(dd);
    }
    row(s("cmp_number"), keyText(p.key_before), keyText(p.key_after));
    row(s("cmp_code"), codeText(p.code_before), codeText(p.code_after));
    (cfg.indicator_labels || []).forEach(function (pair) {
      var change = (p.indicators || {})[pair[0]];
      if (change) { row(pair[1], number(change.before, 2), number(change.after, 2)); }
    });
    row(s("area") + " (m²)", number(p.area_before_m2), number(p.area_after_m2));
    box.appendChild(dl);
    return box;
  }

  function style(type) {
    var color = cfg.colors[type] || "#555";
    return {color: color, weight: 1.5, fillColor: color, fillOpacity: 0.55,
            dashArray: type === "removed" ? "5 4" : null};
  }

  function draw(group, collection) {
    group.clearLayers();
    collection.features.forEach(function (f) {
      var p = f.properties;
      if (p.before) {
        L.geoJSON(p.before, {interactive: false,
                             style: {color: "#333", weight: 1.5, dashArray: "4 4",
                                     fill: false}}).addTo(group);
      }
      if (!f.geometry) { return; }
      L.geoJSON(f, {style: function () { return style(p.type); }})
        .bindPopup(function () { return popup(p); })
        .addTo(group);
    });
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function init() {
    var doc = JSON.parse(document.getElementById("gp-compare-config").textContent);
    cfg = doc.config;
    strings = doc.strings;
    lang = doc.lang;
    var map = window[cfg.map];
    window.gpCompare = {map: map, loads: 0, shown: 0};
    localizeZoom(map);
    if (!map || !cfg.api) { window.gpCompare.ready = true; return; }
    var group = L.featureGroup().addTo(map);
    window.gpCompare.layer = group;
    var note = document.getElementById("gp-compare-note");
    var byView = cfg.total > cfg.limit;
    var seq = 0;

    function load() {
      var url = cfg.api + "&limit=" + cfg.limit;
      if (byView) {
        var b = map.getBounds();
        url += "&bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
          .map(function (v) { return Math.max(-180, Math.min(180, v)).toFixed(6); }).join(",");
      }
      var mine = ++seq;
      if (note) { note.textContent = s("cmp_loading"); }
      fetch(url, {headers: {Accept: "application/json"}})
        .then(function (r) {
          return r.json().then(function (data) {
            if (!r.ok) { var e = new Error(String(r.status)); e.gpText = errorText(data.error); throw e; }
            return data;
          });
        })
        .then(function (data) {
          if (mine !== seq) { return; }
          draw(group, data.features);
          var page = data.page;
          window.gpCompare.loads += 1;
          window.gpCompare.shown = page.returned;
          if (note) {
            note.textContent = !byView ? fill(s("cmp_shown_all"), {n: page.total})
              : page.complete ? fill(s("cmp_shown_view"), {n: page.total})
              : fill(s("cmp_shown_part"), {shown: page.returned, total: page.total});
          }
          window.gpCompare.ready = true;
        })
        .catch(function (err) {
          // Only our own sentence: a browser's ("Failed to fetch") is English.
          if (note) { note.textContent = s("cmp_load_error") + ": " + ((err && err.gpText) || s("error_generic")); }
          window.gpCompare.ready = true;
        });
    }

    if (cfg.total > 0) {
      load();
      if (byView) { map.on("moveend", debounce(load, 250)); }
    } else {
      window.gpCompare.ready = true;
    }
  }

  window.GPCompare = {init: init};
})();
