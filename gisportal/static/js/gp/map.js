/* gisportal map behaviour: the vector-tile layers' styles (maps/*.json "style"), with
 * a hatching per land-use code whose official colour repeats, the looked-up parcel's
 * highlight, tooltips, VectorGrid fixes (overzoom, clicks, one decode of a tile shared
 * by the layers that draw it) and the province page. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  var colorOf = GP.colorOf, el = GP.el;

  /* Hatchings (conf.patterns: {code: {kind, angle, size}}, worked out on the server from
   * the catalogue, gisportal.web.maps.code_patterns): drawn once per code into a small
   * canvas and used as a CanvasPattern fill. The size divides 256, so a hatch runs on
   * from one tile canvas to the next. */
  var patternCache = {};

  function inkOf(color) {
    var m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(color || "");
    if (!m) { return "rgba(0,0,0,0.5)"; }
    var f = function (h) { return Math.round(parseInt(h, 16) * 0.45); };
    return "rgb(" + f(m[1]) + "," + f(m[2]) + "," + f(m[3]) + ")";
  }

  /* Draw pattern `p` over a `size`×`size` square filled with `color` on `ctx`. */
  function drawPattern(ctx, p, color, size) {
    var s = size;
    ctx.fillStyle = color; ctx.fillRect(0, 0, s, s);
    ctx.strokeStyle = inkOf(color); ctx.fillStyle = inkOf(color);
    ctx.lineWidth = 1.2; ctx.lineCap = "butt";
    var line = function (x0, y0, x1, y1) { ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke(); };
    var diag = function (up, off) {
      for (var k = -1; k <= 1; k++) {
        if (up) { line(k * s + off, s, k * s + s + off, 0); } else { line(k * s + off, 0, k * s + s + off, s); }
      }
    };
    var kind = p.kind, a = p.angle || 0;
    if (kind === "line" || kind === "double") {
      if (a === 45) { diag(true, 0); if (kind === "double") { diag(true, s / 4); } }
      else if (a === 135) { diag(false, 0); if (kind === "double") { diag(false, s / 4); } }
      else if (a === 0) { line(0, s / 2, s, s / 2); }
      else { line(s / 2, 0, s / 2, s); }
    } else if (kind === "cross") {
      if (a === 45) { diag(true, 0); diag(false, 0); } else { line(0, s / 2, s, s / 2); line(s / 2, 0, s / 2, s); }
    } else if (kind === "dot") {
      ctx.beginPath(); ctx.arc(s / 2, s / 2, Math.max(1.2, s / 7), 0, 2 * Math.PI); ctx.fill();
    } else if (kind === "ring") {
      ctx.beginPath(); ctx.arc(s / 2, s / 2, s / 4, 0, 2 * Math.PI); ctx.stroke();
    } else if (kind === "dash") {
      ctx.setLineDash([s / 4, s / 4]);
      if (a === 90) { line(s / 2, 0, s / 2, s); } else { line(0, s / 2, s, s / 2); }
      ctx.setLineDash([]);
    }
  }

  /* The fill of a land-use value: its official colour, hatched when the colour is
   * shared with other codes (a CanvasPattern, which canvas paths take as fillStyle). */
  function fillOf(value) {
    var color = colorOf(value), code = GP.primaryCode(value);
    var p = code && (conf.patterns || {})[code];
    if (!p) { return color; }
    var key = code + color;
    if (!patternCache[key]) {
      var ratio = window.devicePixelRatio || 1, size = p.size || 8;
      var c = document.createElement("canvas");
      c.width = c.height = Math.round(size * ratio);
      var ctx = c.getContext("2d");
      ctx.scale(ratio, ratio);
      drawPattern(ctx, p, color, size);
      var pat = ctx.createPattern(c, "repeat");
      if (pat && pat.setTransform && window.DOMMatrix) {
        pat.setTransform(new DOMMatrix().scale(1 / ratio, 1 / ratio));
      }
      patternCache[key] = pat || color;
    }
    return patternCache[key];
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
      if (st.fill_by) { s.fillColor = fillOf(props[st.fill_by]); s.fill = true; }
      if (st.fill_codes) {
        var byCode = st.fill_codes[GP.primaryCode(props.land_use) || ""];
        for (var kc in byCode) { if (Object.prototype.hasOwnProperty.call(byCode, kc)) { s[kc] = byCode[kc]; } }
      }
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
        if (!st.map.hasLayer(tip)) { tip.addTo(st.map); }
      });
      layer.on("mouseout", function () { if (st.map.hasLayer(tip)) { st.map.removeLayer(tip); } });
    });
  }

  /* Decoded tiles shared between layers: the offline base draws roads and rivers from
   * the same plan tiles as the plan layer, so both ask for one URL within moments; the
   * first fetch and decode serves both (kept a few seconds, then dropped). Nothing
   * below mutates a decoded tile, so sharing it is safe. */
  var shared = {};
  function sharedTile(url, make) {
    var hit = shared[url];
    if (hit) { return hit; }
    var pr = make();
    shared[url] = pr;
    setTimeout(function () { delete shared[url]; }, 5000);
    pr.then(null, function () { delete shared[url]; });
    return pr;
  }

  /* A tile's layers with every point moved by (p - o) * f: the part of an ancestor
   * tile this tile covers, in this tile's units. New objects: the ancestor's decoded
   * tile may be in use by other tiles and layers. */
  function cutOut(json, f, dx, dy) {
    var out = {layers: {}};
    for (var name in json.layers) {
      if (!Object.prototype.hasOwnProperty.call(json.layers, name)) { continue; }
      var layer = json.layers[name], ext = layer.extent || 4096, sub = ext / f;
      var ox = dx * sub, oy = dy * sub, feats = [];
      (layer.features || []).forEach(function (feat) {
        var out1 = {type: feat.type, properties: feat.properties, id: feat.id,
                    extent: feat.extent, loadGeometry: feat.loadGeometry, bbox: feat.bbox};
        out1.geometry = feat.geometry.map(function (ring) {
          return ring.map(function (p) { return {x: (p.x - ox) * f, y: (p.y - oy) * f}; });
        });
        feats.push(out1);
      });
      out.layers[name] = {extent: ext, features: feats, name: layer.name, version: layer.version};
    }
    return out;
  }

  /* Overzoom for vector tiles: past options.nativeMaxZoom (the last zoom the server
   * has tiles for), fetch the ancestor tile and rescale the part this tile covers, so
   * lines stay sharp instead of a scaled-up bitmap. Every decoded tile is then handed
   * to GP.onTile (gp/labels.js: label points, codes in view) before it is drawn. */
  function patchVectorGrid() {
    if (!window.L || !L.VectorGrid || !L.VectorGrid.Protobuf || L.VectorGrid.Protobuf.gpPatched) {
      return;
    }
    var proto = L.VectorGrid.Protobuf.prototype;
    var orig = proto._getVectorTilePromise;
    function fetchTile(layer, coords, tileBounds) {
      var url = L.Util.template(layer._url, L.extend({s: layer._getSubdomain ? layer._getSubdomain(coords) : "a",
                                                      x: coords.x, y: coords.y, z: coords.z}, layer.options));
      return sharedTile(url, function () { return orig.call(layer, coords, tileBounds); });
    }
    proto._getVectorTilePromise = function (coords, tileBounds) {
      var self = this, max = this.options.nativeMaxZoom, pr;
      if (max === undefined || coords.z <= max) {
        pr = fetchTile(this, coords, tileBounds);
      } else {
        var f = Math.pow(2, coords.z - max);
        var parent = L.point(Math.floor(coords.x / f), Math.floor(coords.y / f));
        parent.z = max;
        var dx = coords.x - parent.x * f, dy = coords.y - parent.y * f;
        pr = fetchTile(this, parent, tileBounds).then(function (json) {
          var out = cutOut(json, f, dx, dy);
          // The ancestor and where this tile sits in it: work done per feature (label
          // points) is then done once per ancestor, not once per tile cut out of it.
          out.gpSource = {json: json, f: f, dx: dx, dy: dy};
          return out;
        });
      }
      return pr.then(function (json) {
        if (GP.onTile) { GP.onTile(self, coords, json, json.gpSource || null); }
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
   * (an error, and the click is lost). Here every click reaches the st.map, so a click
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

  /* Province page: fit the districts once the layout is final. Its base maps are
   * gp/basemap.js's, as on a district page (it wraps this function). */
  function initProvince() {
    var m = window[CFG.map];
    if (!m || !m.fitBounds) { return; }
    window.gpMap = m;
    st.map = m;
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
          // Listed in the layer control beside the former districts (it can be hidden).
          if (window.gpLayerControl && conf.units_label) {
            window.gpLayerControl.addOverlay(window.gpUnits, conf.units_label);
          }
          document.documentElement.setAttribute('data-units-drawn',
                                                String(data.features.length));
        });
    }
  }


  GP.style = style;
  GP.fillOf = fillOf;
  GP.drawPattern = drawPattern;
  GP.featureId = featureId;
  GP.highlight = highlight;
  GP.initTooltips = initTooltips;
  GP.initProvince = initProvince;
})();
