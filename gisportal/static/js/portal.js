/* gisportal resident pages: styles for the vector tiles, the look-up side panel, the
 * permalink and the plan opacity slider. Text that comes from the API is always put in
 * the page with textContent, never innerHTML: attribute values may contain HTML. */
(function () {
  "use strict";
  var cfgEl = document.getElementById("gp-config");
  var CFG = cfgEl ? JSON.parse(cfgEl.textContent) : {config: {}, strings: {}};
  var conf = CFG.config || {};
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

  /* VectorGrid style function of a composition layer (maps/district.json "style"). */
  function style(layerId) {
    var st = (conf.styles || {})[layerId] || {};
    return function (props) {
      var s = {
        color: st.color || "#333", weight: st.weight || 1, opacity: st.opacity === undefined ? 1 : st.opacity,
        fill: !!st.fill, fillOpacity: st.fillOpacity === undefined ? 0.6 : st.fillOpacity
      };
      if (st.fillColor) { s.fillColor = st.fillColor; }
      if (st.dashArray) { s.dashArray = st.dashArray; }
      if (st.fill_by) { s.fillColor = colorOf(props[st.fill_by]); s.fill = true; }
      if (st.by_level && props.level && st.by_level[props.level]) {
        var extra = st.by_level[props.level];
        for (var k in extra) { if (Object.prototype.hasOwnProperty.call(extra, k)) { s[k] = extra[k]; } }
      }
      return s;
    };
  }

  function idOf(fields, obj) {
    return fields.map(function (f) {
      var v = obj[f]; return v === null || v === undefined ? "" : String(v);
    }).join("|");
  }

  /* getFeatureId of a VectorGrid layer: the key fields joined ("67801|2|3"). */
  function featureId(fields) {
    return function (feat) { return idOf(fields, feat.properties || {}); };
  }

  var highlighted = {};

  function highlight(parcel) {
    var hl = conf.highlights || {};
    Object.keys(hl).forEach(function (layerId) {
      var layer = window[(conf.layers || {})[layerId]];
      if (!layer || !layer.setFeatureStyle) { return; }
      if (highlighted[layerId] !== undefined) {
        layer.resetFeatureStyle(highlighted[layerId]);
        delete highlighted[layerId];
      }
      if (parcel) {
        var id = idOf(hl[layerId].fields, parcel);
        layer.setFeatureStyle(id, hl[layerId].style);
        highlighted[layerId] = id;
      }
    });
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

  /* The annual land-use plans' projects of a look-up answer (newest year first):
   * "Kế hoạch sử dụng đất năm 2026: <name> (<code>)", the land use and the areas. */
  function annualBlock(items, key) {
    if (!items || !items.length) { return null; }
    var box = el("div", "gp-annual");
    var h = el("h3"); h.appendChild(label(key)); box.appendChild(h);
    var ul = el("ul", "gp-annual-list");
    items.forEach(function (x) {
      var li = el("li");
      var head = el("div", "gp-annual-head");
      head.appendChild(el("b", null, t("annual_year") + " " + (x.year === null ? "?" : x.year) + ": "));
      head.appendChild(document.createTextNode(String(x.name || "") + (x.code ? " (" + x.code + ")" : "")));
      li.appendChild(head);
      var nm = CFG.lang === "en" ? (x.land_use_name_en || luName(x.land_use, x.land_use_name))
        : (x.land_use_name || luName(x.land_use));
      var extra = t("project_area") + " " + fmtArea(x.area_m2);
      if (x.overlap_m2 !== null && x.overlap_m2 !== undefined) {
        extra += " · " + t("annual_overlap") + " " + fmtArea(x.overlap_m2) + " (" + fmtShare(x.share) + ")";
      }
      li.appendChild(chip(x.land_use, nm, x.color || colorOf(x.land_use), extra));
      if (x.decision) {
        li.appendChild(el("div", "gp-annual-decision", t("annual_decision") + ": " + x.decision));
      }
      ul.appendChild(li);
    });
    box.appendChild(ul);
    return box;
  }

  /* ------------------------------------------------------------ district page */

  var map = null, marker = null, selected = null, result = null;

  function showMessage(key, cls) {
    result.replaceChildren();
    var p = el("p", cls || "gp-hint");
    p.appendChild(label(key));
    result.appendChild(p);
  }

  function showResult(data) {
    result.replaceChildren();
    var parcel = data && data.parcel;
    if (!parcel) {
      /* A point with no parcel is an answer (HTTP 200), with the reason and the plan
       * zone there, if any: a road, a river, or outside every district. */
      showMessage(data && data.reason === "outside_districts" ? "outside_districts" : "no_parcel",
                  "gp-empty");
      var here = (data && data.planned) || [];
      if (here.length) {
        var hh = el("h3"); hh.appendChild(label("planned_here")); result.appendChild(hh);
        var list = el("ul", "gp-planned");
        here.forEach(function (z) {
          var li = el("li");
          var nm = CFG.lang === "en" ? (z.name_en || luName(z.code, z.name)) : (z.name || z.name_en);
          li.appendChild(chip(z.code, nm, z.color || colorOf(z.code)));
          list.appendChild(li);
        });
        result.appendChild(list);
      }
      var annualHere = annualBlock(data && data.annual_plans, "annual_here");
      if (annualHere) { result.appendChild(annualHere); }
      selected = null; highlight(null); updateHash();
      return;
    }
    var h = el("h2"); h.appendChild(label("parcel")); result.appendChild(h);
    var dl = el("dl", "gp-dl");
    var cname = parcel.commune_name || (conf.communes || {})[String(parcel.commune)];
    row(dl, "commune", cname ? cname + " (" + parcel.commune + ")" : (parcel.commune || "—"));
    var units = data.units;
    if (units) {  // today's unit and the former ones an older certificate names
      var now = units.current ? [units.current] : (units.current_options || []);
      row(dl, "unit_today", now.map(function (u) { return u.name + " (" + u.code + ")"; })
        .join(" " + t("or") + " "));
      row(dl, "unit_former", (units.former || []).map(function (u) { return u.name; }).join(", "));
    }
    row(dl, "sheet", parcel.sheet);
    row(dl, "parcel_no", parcel.parcel);
    row(dl, "area", fmtArea(parcel.area_m2));
    var cu = parcel.current_use || "";
    row(dl, "current_use", chip(cu, luName(cu, parcel.current_use_name), colorOf(cu)));
    result.appendChild(dl);

    var h2 = el("h3"); h2.appendChild(label("planned_use")); result.appendChild(h2);
    var planned = data.planned || [];
    if (!planned.length) {
      var p = el("p", "gp-empty"); p.appendChild(label("no_plan")); result.appendChild(p);
    } else {
      var ul = el("ul", "gp-planned");
      planned.forEach(function (z) {
        var li = el("li");
        var name = CFG.lang === "en" ? (z.name_en || z.name) : (z.name || z.name_en);
        li.appendChild(chip(z.code, name, z.color || colorOf(z.code),
          fmtArea(z.area_m2) + " · " + fmtShare(z.share)));
        ul.appendChild(li);
      });
      result.appendChild(ul);
    }
    var plan = data.plan || {};
    if (plan.status === "consultation") {
      // A draft for comment is never shown as the plan in force.
      result.appendChild(el("p", "gp-consultation",
        CFG.lang === "en" ? plan.status_label_en : plan.status_label));
    }
    var h3 = el("h3"); h3.appendChild(label("decision")); result.appendChild(h3);
    var dp = el("p", "gp-decision");
    if (plan.decision) {
      var txt = String(plan.decision);
      if (plan.date) { txt += " — " + t("dated") + " " + plan.date; }
      if (plan.authority) { txt += " — " + plan.authority; }
      dp.textContent = txt;
    } else {
      dp.appendChild(label("no_decision"));
    }
    result.appendChild(dp);
    var annual = annualBlock(data.annual_plans, "annual_plans");
    if (annual) { result.appendChild(annual); }
    if (conf.parcel_sheet && parcel.sheet !== undefined && parcel.parcel !== undefined) {
      var a = el("a", "gp-sheet-link", t("sheet_link"));
      a.href = "/parcels/" + encodeURIComponent(parcel.district || conf.district) + "/" +
        encodeURIComponent(parcel.sheet) + "/" + encodeURIComponent(parcel.parcel) +
        (parcel.commune ? "?commune=" + encodeURIComponent(parcel.commune) : "");
      result.appendChild(el("p")).appendChild(a);
    }
    /* A parcel of the neighbouring district (a click across the border) is shown but
     * neither highlighted nor put in the permalink: both name this page's district. */
    var ours = !conf.district || !parcel.district || parcel.district === conf.district;
    selected = ours ? {commune: parcel.commune, sheet: parcel.sheet, parcel: parcel.parcel} : null;
    highlight(selected);
    if (parcel.point && isFinite(parcel.point.lat) && isFinite(parcel.point.lon)) {
      placeMarker(parcel.point.lat, parcel.point.lon);
    }
    updateHash();
  }

  function placeMarker(lat, lon) {
    if (marker) { marker.setLatLng([lat, lon]); return; }
    marker = L.circleMarker([lat, lon], {radius: 7, color: "#0b5394", weight: 3,
      fillColor: "#ffffff", fillOpacity: 0.9, interactive: false}).addTo(map);
  }

  function lookup(params) {
    showMessage("loading");
    result.setAttribute("aria-busy", "true");
    var q = Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
    return fetch("/api/lookup?" + q, {headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      })
      .then(function (res) {
        result.removeAttribute("aria-busy");
        if (res.status === 200) { showResult(res.body); return; }
        /* 404: a sheet/parcel key (from a permalink) that names no parcel. */
        showMessage(res.status === 404 ? "not_found" : "error",
                    res.status === 404 ? "gp-empty" : "gp-error");
        var msg = res.body && res.body.error && res.body.error.message;
        if (msg) { result.appendChild(el("p", "gp-error-detail", msg)); }
      })
      .catch(function () { result.removeAttribute("aria-busy"); showMessage("error", "gp-error"); });
  }

  /* ------------------------------------------------------------ search box */

  function flyTo(lat, lon) {
    if (!map || !isFinite(lat) || !isFinite(lon)) { return; }
    var z = Math.max(map.getZoom(), 17);
    if (isFinite(map.getMaxZoom())) { z = Math.min(z, map.getMaxZoom()); }
    map.flyTo([lat, lon], z);
  }

  function showPlaces(places) {
    result.replaceChildren();
    if (!places.length) { showMessage("no_places", "gp-empty"); return; }
    var h = el("h3"); h.appendChild(label("places_found")); result.appendChild(h);
    var ul = el("ul", "gp-places");
    places.forEach(function (p) {
      var li = el("li");
      var b = el("button", null, p.name);
      b.type = "button";
      b.appendChild(document.createTextNode(" "));
      // Today's units (p.current) by their own level; the boundary layers' communes are
      // the former ones, of any level.
      var lv = p.level === "district" ? t("level_district") :
        (p.current && S["level_" + p.level] ? t("level_" + p.level) : t("commune"));
      b.appendChild(el("span", "lv", lv + (p.code ? " · " + p.code : "")));
      var bb = p.bbox;
      if (bb && bb.length === 4 && bb.every(isFinite)) {
        b.addEventListener("click", function () {
          map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]]);
        });
      } else {
        b.disabled = true;
      }
      li.appendChild(b);
      if (p.note) {  // found by a former commune's name: what became of it
        li.appendChild(el("div", "gp-note", CFG.lang === "en" ? (p.note_en || p.note) : p.note));
      }
      ul.appendChild(li);
    });
    result.appendChild(ul);
  }

  function search(q) {
    showMessage("searching");
    result.setAttribute("aria-busy", "true");
    var url = "/api/search?q=" + encodeURIComponent(q) +
      (conf.district ? "&district=" + encodeURIComponent(conf.district) : "");
    return fetch(url, {headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      })
      .then(function (res) {
        result.removeAttribute("aria-busy");
        var body = res.body || {};
        if (res.status === 200 && body.kind === "places") { showPlaces(body.places || []); return; }
        if (res.status === 200 && body.result) {
          var pt = (body.result.parcel && body.result.parcel.point) || body.point;
          showResult(body.result);
          if (pt) { placeMarker(pt.lat, pt.lon); flyTo(pt.lat, pt.lon); }
          return;
        }
        showMessage(res.status === 404 ? "not_found" : "search_error",
                    res.status === 404 ? "gp-empty" : "gp-error");
        var msg = body.error && body.error.message;
        if (msg) { result.appendChild(el("p", "gp-error-detail", msg)); }
      })
      .catch(function () { result.removeAttribute("aria-busy"); showMessage("search_error", "gp-error"); });
  }

  function initSearch() {
    var form = document.getElementById("gp-search");
    var input = document.getElementById("gp-search-q");
    if (!form || !input) { return; }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var q = input.value.trim();
      if (q) { search(q); }
    });
  }

  function updateHash() {
    if (!map) { return; }
    var c = map.getCenter(), z = map.getZoom();
    var h = "#" + z + "/" + c.lat.toFixed(6) + "/" + c.lng.toFixed(6);
    if (selected) {
      h += "/" + [selected.commune || "", selected.sheet, selected.parcel]
        .map(function (v) { return encodeURIComponent(String(v)); }).join("/");
    }
    if (location.hash !== h) { history.replaceState(null, "", h); }
    var link = document.getElementById("gp-permalink");
    if (link) { link.href = location.pathname + h; }
    var lang = document.getElementById("gp-lang");
    if (lang) { lang.href = lang.href.split("#")[0] + h; }
  }

  function parseHash() {
    var parts = location.hash.replace(/^#/, "").split("/");
    if (parts.length < 3) { return null; }
    var z = parseInt(parts[0], 10), lat = parseFloat(parts[1]), lon = parseFloat(parts[2]);
    if (!isFinite(z) || !isFinite(lat) || !isFinite(lon)) { return null; }
    var out = {z: z, lat: lat, lon: lon, parcel: null};
    if (parts.length >= 6 && parts[4] && parts[5]) {
      out.parcel = {commune: decodeURIComponent(parts[3]), sheet: decodeURIComponent(parts[4]),
                    parcel: decodeURIComponent(parts[5])};
    }
    return out;
  }

  function initDistrict() {
    map = window[CFG.map];
    result = document.getElementById("gp-result");
    if (!map || !result) { return; }
    window.gpMap = map;
    var fromHash = parseHash();
    if (fromHash) {
      map.setView([fromHash.lat, fromHash.lon], fromHash.z);
    } else if (conf.bounds) {
      map.fitBounds(conf.bounds, {animate: false});
    }
    map.on("click", function (e) {
      placeMarker(e.latlng.lat, e.latlng.lng);
      /* No district in the query: the server finds the district from the published
       * outlines, so a click across the border answers for the neighbouring district,
       * and one outside every district says so. */
      lookup({lat: e.latlng.lat.toFixed(7), lon: e.latlng.lng.toFixed(7)});
    });
    map.on("moveend", updateHash);
    initTooltips();
    if (fromHash && fromHash.parcel) {
      var q = {district: conf.district, sheet: fromHash.parcel.sheet, parcel: fromHash.parcel.parcel};
      if (fromHash.parcel.commune) { q.commune = fromHash.parcel.commune; }
      lookup(q);
    }
    initSearch();
    var slider = document.getElementById("gp-opacity");
    if (slider) {
      var layer = window[(conf.layers || {})[slider.getAttribute("data-layer")]];
      var apply = function () { if (layer) { layer.setOpacity(Number(slider.value) / 100); } };
      slider.addEventListener("input", apply);
      apply();
    }
    updateHash();
  }

  /* Tooltips of the layers whose composition asks for one (maps/district.json
   * "tooltip"): the feature under the pointer named from its tile attributes, as text. */
  function initTooltips() {
    var specs = conf.tooltips || {};
    Object.keys(specs).forEach(function (layerId) {
      var layer = window[(conf.layers || {})[layerId]];
      if (!layer || !layer.on) { return; }
      var spec = specs[layerId];
      var tip = L.tooltip({sticky: true, direction: "top", className: "gp-tooltip"});
      layer.on("mouseover mousemove", function (e) {
        var p = (e.layer && e.layer.properties) || {};
        var lbl = (spec.label || {})[CFG.lang === "en" ? "en" : "vi"] || "";
        var first = spec.prefix && p[spec.prefix] !== undefined ? lbl + " " + p[spec.prefix] + ": " : "";
        var fields = (spec.fields || []).map(function (f) { return p[f]; })
          .filter(function (v) { return v !== null && v !== undefined && v !== ""; });
        var text = first + (fields.length ? fields[0] + (fields.length > 1 ? " (" + fields.slice(1).join(", ") + ")" : "") : "");
        if (!text) { return; }
        tip.setContent(el("span", null, text)).setLatLng(e.latlng);
        if (!map.hasLayer(tip)) { tip.addTo(map); }
      });
      layer.on("mouseout", function () { if (map.hasLayer(tip)) { map.removeLayer(tip); } });
    });
  }

  /* Overzoom for vector tiles: past options.nativeMaxZoom (the last zoom the server
   * has tiles for), fetch the ancestor tile and rescale the part this tile covers, so
   * lines stay sharp instead of a scaled-up bitmap. */
  function patchVectorGrid() {
    if (!window.L || !L.VectorGrid || !L.VectorGrid.Protobuf || L.VectorGrid.Protobuf.gpPatched) {
      return;
    }
    var proto = L.VectorGrid.Protobuf.prototype;
    var orig = proto._getVectorTilePromise;
    proto._getVectorTilePromise = function (coords, tileBounds) {
      var max = this.options.nativeMaxZoom;
      if (max === undefined || coords.z <= max) { return orig.call(this, coords, tileBounds); }
      var f = Math.pow(2, coords.z - max);
      var parent = L.point(Math.floor(coords.x / f), Math.floor(coords.y / f));
      parent.z = max;
      var dx = coords.x - parent.x * f, dy = coords.y - parent.y * f;
      return orig.call(this, parent, tileBounds).then(function (json) {
        for (var name in json.layers) {
          if (!Object.prototype.hasOwnProperty.call(json.layers, name)) { continue; }
          var layer = json.layers[name], ext = layer.extent || 4096, sub = ext / f;
          var ox = dx * sub, oy = dy * sub;
          (layer.features || []).forEach(function (feat) {
            feat.geometry = feat.geometry.map(function (ring) {
              return ring.map(function (p) { return {x: (p.x - ox) * f, y: (p.y - oy) * f}; });
            });
          });
        }
        return json;
      });
    };
    L.VectorGrid.Protobuf.gpPatched = true;
  }
  patchVectorGrid();

  /* Clicks on an interactive vector-tile layer (the annual plan's, for its tooltip).
   * Leaflet 1.9 marks canvas containers to be ignored by the map's own DOM handler, so
   * a canvas renderer must pass every click on; VectorGrid's tile renderer passes only
   * clicks on a feature, through L.DomEvent.fakeStop, which Leaflet 1.9 no longer has
   * (an error, and the click is lost). Here every click reaches the map, so a click
   * over the overlay still looks the parcel up. */
  function patchCanvasTileClicks() {
    var proto = window.L && L.Canvas && L.Canvas.Tile && L.Canvas.Tile.prototype;
    if (!proto || proto.gpClickPatched) { return; }
    proto._onClick = function (e) {
      var point = this._map.mouseEventToLayerPoint(e).subtract(this.getOffset()), hit = null;
      for (var id in this._layers) {
        if (!Object.prototype.hasOwnProperty.call(this._layers, id)) { continue; }
        var layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point) &&
            !this._map._draggableMoved(layer)) { hit = layer; }
      }
      this._fireEvent(hit ? [hit] : false, e);
    };
    proto.gpClickPatched = true;
  }
  patchCanvasTileClicks();

  /* Province page: fit the districts once the layout is final. */
  function initProvince() {
    var m = window[CFG.map];
    if (!m || !m.fitBounds) { return; }
    window.gpMap = m;
    m.invalidateSize();
    if (conf.bounds) { m.fitBounds(conf.bounds, {animate: false}); }
    // Today's communes and wards: fetched after the page (too big to embed), drawn as
    // outlines over the former districts, named under the pointer.
    if (conf.units_url && window.fetch) {
      fetch(conf.units_url).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          window.gpUnits = L.geoJSON(data, {
            style: function () { return conf.units_style; },
            onEachFeature: function (f, layer) {
              layer.bindTooltip(f.properties.name + ' — ' + f.properties.level_label,
                                {sticky: true});
            }
          }).addTo(m);
          document.documentElement.setAttribute('data-units-drawn',
                                                String(data.features.length));
        });
    }
  }

  window.GP = {initProvince: initProvince, featureId: featureId, style: style, colorOf: colorOf, initDistrict: initDistrict, config: CFG};
})();
