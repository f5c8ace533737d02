/* gisportal map labels: commune and town names at district zoom, land-use codes inside
 * plan zones from zoom 15, parcel numbers (and sheet) inside parcels from zoom 18, drawn
 * on one canvas over the map with a screen-space collision grid, so no two labels ever
 * overlap, each with a white halo. Also: the legend's hatched swatches and the codes
 * in view, and the "first map paint" mark that bench/bench_map_paint.py reads.
 *
 * Why on the client from the tiles the map already decoded (not a label layer built
 * into the archives, nor MapLibre GL): the geometry of every feature in view is in the
 * browser already, so a label point costs one scan line over a ring the tile decoder
 * just produced (a few ms for a z18 view of a 200 000-parcel district), the archives
 * and their build stay as they are, and no 1.4 MB WebGL library is loaded on phones;
 * a MapLibre GL symbol layer inside Leaflet was measured against it and was not
 * faster (bench/bench_labels.py; docs/design.md, "Labels"). A feature cut by tile edges is labelled once, at the widest
 * piece. Text from tiles is drawn with fillText: it is never parsed as HTML. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  var TILE = 256;
  var HALO = "rgba(255,255,255,0.92)";
  var PLACE_STYLE = {
    town: {font: "bold 14px sans-serif", color: "#202020", priority: 0},
    commune: {font: "600 12px sans-serif", color: "#7a1f1a", priority: 1}
  };
  var state = {
    canvas: null, pending: false, firstPaint: null, passes: 0, lastMs: 0, lastAt: 0, totalMs: 0,
    drawn: [], codesInView: null, layers: []
  };

  function lang() { return CFG.lang === "en" ? "en" : "vi"; }

  /* ---------------------------------------------------------------- label points */

  function ringArea(r) {
    var a = 0;
    for (var i = 0, j = r.length - 1; i < r.length; j = i++) { a += (r[j].x + r[i].x) * (r[j].y - r[i].y); }
    return a / 2;
  }

  /* The widest inside stretch of a horizontal line at y across the rings (even-odd). */
  function widest(rings, y) {
    var xs = [];
    for (var k = 0; k < rings.length; k++) {
      var r = rings[k];
      for (var i = 0, j = r.length - 1; i < r.length; j = i++) {
        var a = r[j], b = r[i];
        if ((a.y <= y) !== (b.y <= y)) { xs.push(a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y)); }
      }
    }
    xs.sort(function (p, q) { return p - q; });
    var best = null;
    for (var m = 0; m + 1 < xs.length; m += 2) {
      var w = xs[m + 1] - xs[m];
      if (!best || w > best.w) { best = {x: (xs[m] + xs[m + 1]) / 2, w: w}; }
    }
    return best;
  }

  /* Label point of a polygon feature in tile units, with the room around it (the
   * widest stretch across it, the height of its largest ring), or null when it has no
   * area or lies outside this tile (and its buffer). */
  function anchorOf(geom, ext, padding) {
    var big = null, bigA = 0;
    for (var i = 0; i < geom.length; i++) {
      var a = Math.abs(ringArea(geom[i]));
      if (a > bigA) { bigA = a; big = geom[i]; }
    }
    if (!big || bigA <= 0) { return null; }
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (var k = 0; k < big.length; k++) {
      var p = big[k];
      if (p.x < x0) { x0 = p.x; } if (p.x > x1) { x1 = p.x; }
      if (p.y < y0) { y0 = p.y; } if (p.y > y1) { y1 = p.y; }
    }
    var pad = padding === undefined ? ext / 16 : padding;
    if (x1 < -pad || y1 < -pad || x0 > ext + pad || y0 > ext + pad) { return null; }
    var best = null, fr = [0.5, 0.35, 0.65];
    for (var f = 0; f < fr.length; f++) {
      var y = y0 + (y1 - y0) * fr[f], s = widest(geom, y);
      if (s && (!best || s.w > best.w)) { best = {x: s.x, y: y, w: s.w}; }
    }
    if (!best || best.x < -pad || best.y < -pad || best.x > ext + pad || best.y > ext + pad) { return null; }
    best.h = y1 - y0;
    best.area = bigA;
    return best;
  }

  /* Whether a ring's box meets the tile (its own part, not the buffer around it). */
  function touches(ring, ext) {
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (var i = 0; i < ring.length; i++) {
      var p = ring[i];
      if (p.x < x0) { x0 = p.x; } if (p.x > x1) { x1 = p.x; }
      if (p.y < y0) { y0 = p.y; } if (p.y > y1) { y1 = p.y; }
    }
    return x1 > 0 && y1 > 0 && x0 < ext && y0 < ext;
  }

  function textOf(spec, p) {
    var parts = (spec.fields || []).map(function (f) { return p[f]; })
      .filter(function (v) { return v !== null && v !== undefined && v !== ""; });
    return parts.length ? parts.join(" ") : null;
  }

  /* Label candidates of every polygon feature of a decoded tile, in its own units. */
  function tileAnchors(json, spec, id) {
    var out = [], ext = 4096;
    for (var name in json.layers) {
      if (!Object.prototype.hasOwnProperty.call(json.layers, name)) { continue; }
      var tl = json.layers[name], feats = tl.features || [];
      ext = tl.extent || 4096;
      for (var i = 0; i < feats.length; i++) {
        var feat = feats[i], props = feat.properties || {};
        if (feat.type !== 3) { continue; }
        var text = textOf(spec, props);
        if (!text) { continue; }
        var a = anchorOf(feat.geometry, ext, Infinity);
        if (!a) { continue; }
        a.text = text;
        if (spec.second && props[spec.second] !== undefined && props[spec.second] !== null) {
          a.text2 = ((spec.second_label || {})[lang()] || "") + " " + props[spec.second];
        }
        a.id = id + ":" + (spec.id || []).map(function (f) { return props[f]; }).join("|");
        out.push(a);
      }
    }
    return {ext: ext, list: out};
  }

  /* GP.onTile (called by gp/map.js for every decoded tile before it is drawn): keep the
   * label candidates of a labelled layer's tile, and the land-use codes of a plan tile
   * (the legend lists the codes in view). `src` is the ancestor a tile past the last
   * tile zoom was cut out of: its label points are worked out once, on the ancestor,
   * and moved into each tile cut out of it. */
  function onTile(layer, coords, json, src) {
    var id = layer.options.gpLayer;
    if (!id) { return; }
    var key = layer._tileCoordsToKey(coords);
    if (!layer._gpTiles) {
      layer._gpTiles = {};
      layer.on("tileunload", function (e) { delete layer._gpTiles[layer._tileCoordsToKey(e.coords)]; });
      layer.on("tileload", function (e) {
        var t = layer._gpTiles[layer._tileCoordsToKey(e.coords)];
        if (t && t.features > 0) { state.sawFeatures = true; }
        schedule();
      });
    }
    var spec = (conf.labels || {})[id], off = window.gpNoLabels === true;
    var entry = {z: coords.z, x: coords.x, y: coords.y, labels: [], codes: {}, features: 0, ext: 4096};
    var byLanduse = (conf.styles || {})[id] && conf.styles[id].fill_by === "land_use";
    for (var name in json.layers) {
      if (!Object.prototype.hasOwnProperty.call(json.layers, name)) { continue; }
      var tl = json.layers[name], ext = tl.extent || 4096, feats = tl.features || [];
      entry.ext = ext;
      for (var i = 0; i < feats.length; i++) {
        var g = feats[i].geometry[0] || [];
        if (!touches(g, ext)) { continue; }  // (a cut-out tile carries its whole ancestor)
        entry.features += 1;
        if (byLanduse) {
          var c = GP.primaryCode((feats[i].properties || {}).land_use);
          if (c) { entry.codes[c] = true; }
        }
      }
    }
    if (spec && !off && coords.z >= (spec.min_zoom || 0)) {
      var base = src ? src.json : json, cacheKey = "_gpAnchors_" + id;
      var anchors = base[cacheKey] || (base[cacheKey] = tileAnchors(base, spec, id));
      var f = src ? src.f : 1, e = anchors.ext, sub = e / f;
      var ox = src ? src.dx * sub : 0, oy = src ? src.dy * sub : 0, pad = e / 16;
      entry.ext = e;
      for (var k = 0; k < anchors.list.length; k++) {
        var a = anchors.list[k], x = (a.x - ox) * f, y = (a.y - oy) * f;
        if (x < -pad || y < -pad || x > e + pad || y > e + pad) { continue; }
        entry.labels.push({x: x, y: y, w: a.w * f, h: a.h * f, area: a.area * f * f,
                           text: a.text, text2: a.text2, id: a.id});
      }
    }
    layer._gpTiles[key] = entry;
  }

  /* ---------------------------------------------------------------- drawing */

  var widths = {};
  function measure(ctx, font, text) {
    var k = font + "\u0000" + text;
    if (widths[k] === undefined) { ctx.font = font; widths[k] = ctx.measureText(text).width; }
    return widths[k];
  }

  /* A screen-space grid of placed boxes: a box is placed only when it meets none. */
  function Grid(cell) { this.cell = cell; this.cells = {}; }
  Grid.prototype.fits = function (b) {
    var c = this.cell;
    for (var gx = Math.floor(b.x0 / c); gx <= Math.floor(b.x1 / c); gx++) {
      for (var gy = Math.floor(b.y0 / c); gy <= Math.floor(b.y1 / c); gy++) {
        var list = this.cells[gx + ":" + gy];
        if (!list) { continue; }
        for (var i = 0; i < list.length; i++) {
          var o = list[i];
          if (b.x0 < o.x1 && b.x1 > o.x0 && b.y0 < o.y1 && b.y1 > o.y0) { return false; }
        }
      }
    }
    return true;
  };
  Grid.prototype.add = function (b) {
    var c = this.cell;
    for (var gx = Math.floor(b.x0 / c); gx <= Math.floor(b.x1 / c); gx++) {
      for (var gy = Math.floor(b.y0 / c); gy <= Math.floor(b.y1 / c); gy++) {
        var k = gx + ":" + gy;
        (this.cells[k] = this.cells[k] || []).push(b);
      }
    }
  };

  function ensureCanvas(map) {
    if (state.canvas) { return state.canvas; }
    var pane = map.getPane("gpLabels") || map.createPane("gpLabels");
    pane.style.zIndex = 450;  // over the vector tiles (400), under markers and popups
    pane.style.pointerEvents = "none";
    var c = document.createElement("canvas");
    c.className = "gp-labels";
    pane.appendChild(c);
    map.on("zoomstart", function () { c.style.visibility = "hidden"; });
    map.on("moveend zoomend resize overlayadd overlayremove baselayerchange", schedule);
    state.canvas = c;
    return c;
  }

  function schedule() {
    if (state.pending) { return; }
    state.pending = true;
    L.Util.requestAnimFrame(function () { state.pending = false; draw(); });
  }

  function candidates(map, z, origin, size) {
    var out = [];
    // Names of places (server-computed points: gisportal.web.maps._place_labels).
    (conf.place_labels || []).forEach(function (p) {
      if (z < (p.min_zoom || 0) || z > (p.max_zoom === undefined ? 99 : p.max_zoom)) { return; }
      var pt = map.latLngToContainerPoint([p.lat, p.lon]);
      var s = PLACE_STYLE[p.kind] || PLACE_STYLE.commune;
      out.push({text: p.text, x: pt.x, y: pt.y, font: s.font, color: s.color,
                priority: s.priority, room: Infinity, roomH: Infinity, kind: p.kind, rank: 0});
    });
    // Labels of the tiles on screen (gp/map.js hands every tile to onTile).
    var best = {};
    state.layers.forEach(function (L1) {
      var layer = L1.layer, spec = L1.spec;
      if (!map.hasLayer(layer) || !layer._gpTiles || z < (spec.min_zoom || 0)) { return; }
      for (var key in layer._gpTiles) {
        if (!Object.prototype.hasOwnProperty.call(layer._gpTiles, key)) { continue; }
        var t = layer._gpTiles[key];
        if (t.z !== z || !t.labels.length) { continue; }
        var s = TILE / t.ext, bx = t.x * TILE - origin.x, by = t.y * TILE - origin.y;
        for (var i = 0; i < t.labels.length; i++) {
          var a = t.labels[i], x = bx + a.x * s, y = by + a.y * s;
          if (x < -50 || y < -20 || x > size.x + 50 || y > size.y + 20) { continue; }
          var prev = best[a.id];
          if (prev && prev.room >= a.w * s) { continue; }
          best[a.id] = {text: a.text, text2: a.text2, x: x, y: y, room: a.w * s, roomH: a.h * s,
                        font: spec.font || "12px sans-serif", color: spec.color || "#222",
                        priority: spec.priority || 5, rank: -a.area, kind: L1.id};
        }
      }
    });
    for (var id in best) { if (Object.prototype.hasOwnProperty.call(best, id)) { out.push(best[id]); } }
    out.sort(function (p, q) { return p.priority - q.priority || p.rank - q.rank; });
    return out;
  }

  function draw() {
    var map = st.map;
    if (!map || !map._loaded) { return; }
    var t0 = performance.now();
    var c = ensureCanvas(map), size = map.getSize(), ratio = window.devicePixelRatio || 1;
    if (c.width !== Math.round(size.x * ratio) || c.height !== Math.round(size.y * ratio)) {
      c.width = Math.round(size.x * ratio); c.height = Math.round(size.y * ratio);
      c.style.width = size.x + "px"; c.style.height = size.y + "px";
    }
    L.DomUtil.setPosition(c, map.containerPointToLayerPoint([0, 0]));
    c.style.visibility = "";
    var ctx = c.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    var z = Math.round(map.getZoom());
    // Container point of world pixel (0, 0) at this zoom.
    var origin = map.getPixelOrigin().subtract(map._getMapPanePos ? map._getMapPanePos() : L.point(0, 0));
    // window.gpNoLabels (set by bench/bench_map_paint.py only): the same page without
    // labels, to measure what they cost.
    var list = window.gpNoLabels === true ? [] : candidates(map, z, origin, size);
    var grid = new Grid(48), drawn = [];
    ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.lineJoin = "round";
    for (var i = 0; i < list.length; i++) {
      var l = list[i], fs = parseInt(/(\d+)px/.exec(l.font)[1], 10), lh = fs + 2;
      var w = measure(ctx, l.font, l.text), lines = [l.text];
      if (l.text2) {
        var w2 = measure(ctx, l.font, l.text2);
        if (Math.max(w, w2) + 4 <= l.room && 2 * lh + 2 <= l.roomH) { lines.push(l.text2); w = Math.max(w, w2); }
      }
      var h = lines.length * lh;
      // It must fit inside its feature (place names have all the room they want)...
      if (w + 4 > l.room || h > l.roomH) { continue; }
      var box = {x0: l.x - w / 2 - 2, x1: l.x + w / 2 + 2, y0: l.y - h / 2 - 1, y1: l.y + h / 2 + 1};
      // Whole labels only: one cut by the map's edge reads as another number.
      if (box.x0 < 0 || box.y0 < 0 || box.x1 > size.x || box.y1 > size.y) { continue; }
      // ...and meet no label placed before it.
      if (!grid.fits(box)) { continue; }
      grid.add(box);
      ctx.font = l.font;
      for (var k = 0; k < lines.length; k++) {
        var y = l.y + (k - (lines.length - 1) / 2) * lh;
        ctx.lineWidth = 3.5; ctx.strokeStyle = HALO; ctx.strokeText(lines[k], l.x, y);
        ctx.fillStyle = l.color; ctx.fillText(lines[k], l.x, y);
      }
      drawn.push({text: lines.join("\n"), kind: l.kind, x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1});
    }
    state.drawn = drawn;
    state.passes += 1;
    // When this pass ended (ms since navigation start) and what it took: what
    // bench/bench_labels.py reads to time the labels of a view after a pan.
    state.lastAt = performance.now();
    state.lastMs = state.lastAt - t0;
    state.totalMs += state.lastMs;
    document.documentElement.setAttribute("data-gp-labels", String(drawn.length));
    updateLegend();
    if (state.firstPaint === null && state.sawFeatures) {
      // First map paint: the first frame after a vector tile holding features was
      // drawn, with this pass's labels on it (ms since navigation start).
      state.firstPaint = performance.now();
      if (performance.mark) { performance.mark("gp-first-paint"); }
      document.documentElement.setAttribute("data-gp-first-paint", String(Math.round(state.firstPaint)));
    }
  }

  /* ---------------------------------------------------------------- legend */

  function legendSwatches() {
    var ul = document.getElementById("gp-legend");
    if (!ul) { return; }
    Array.prototype.forEach.call(ul.querySelectorAll("li[data-code]"), function (li) {
      var code = li.getAttribute("data-code"), p = (conf.patterns || {})[code];
      if (!p) { return; }
      var old = li.querySelector(".sw"), cv = document.createElement("canvas");
      var ratio = window.devicePixelRatio || 1, w = 18, h = 14;
      cv.width = w * ratio; cv.height = h * ratio; cv.className = "sw gp-sw-pattern";
      var ctx = cv.getContext("2d");
      ctx.scale(ratio, ratio);
      ctx.fillStyle = GP.fillOf(code);
      ctx.fillRect(0, 0, w, h);
      li.setAttribute("data-pattern", p.kind + "-" + p.angle + "-" + p.size);
      if (old) { li.replaceChild(cv, old); } else { li.insertBefore(cv, li.firstChild); }
    });
  }

  /* Codes of the plan zones in the tiles on screen: the legend shows only those (all
   * of the district's when no plan tile is on screen). */
  function updateLegend() {
    var ul = document.getElementById("gp-legend"), map = st.map;
    if (!ul || !map) { return; }
    var z = Math.round(map.getZoom()), codes = null, range = tileRange(map, z);
    state.layers.concat(state.planLayers || []).forEach(function (L1) {
      var layer = L1.layer;
      if (!map.hasLayer(layer) || !layer._gpTiles) { return; }
      for (var key in layer._gpTiles) {
        if (!Object.prototype.hasOwnProperty.call(layer._gpTiles, key)) { continue; }
        var t = layer._gpTiles[key];
        if (t.z !== z || t.x < range.x0 || t.x > range.x1 || t.y < range.y0 || t.y > range.y1) { continue; }
        codes = codes || {};
        for (var c in t.codes) { if (Object.prototype.hasOwnProperty.call(t.codes, c)) { codes[c] = true; } }
      }
    });
    state.codesInView = codes ? Object.keys(codes).sort() : null;
    var shown = 0;
    Array.prototype.forEach.call(ul.querySelectorAll("li[data-code]"), function (li) {
      var on = !codes || !!codes[li.getAttribute("data-code")];
      li.hidden = !on;
      if (on) { shown += 1; }
    });
    ul.setAttribute("data-in-view", codes ? String(shown) : "all");
  }

  function tileRange(map, z) {
    var b = map.getPixelBounds();
    return {x0: Math.floor(b.min.x / TILE), y0: Math.floor(b.min.y / TILE),
            x1: Math.floor((b.max.x - 1) / TILE), y1: Math.floor((b.max.y - 1) / TILE)};
  }

  /* ---------------------------------------------------------------- start */

  function initLabels() {
    var map = st.map;
    if (!map) { return; }
    var layers = conf.layers || {};
    state.layers = [];
    state.planLayers = [];
    Object.keys(layers).forEach(function (id) {
      var layer = window[layers[id]];
      if (!layer) { return; }
      var spec = (conf.labels || {})[id];
      if (spec) { state.layers.push({id: id, layer: layer, spec: spec}); }
      else if ((conf.styles || {})[id] && conf.styles[id].fill_by === "land_use") {
        state.planLayers.push({id: id, layer: layer, spec: {}});
      }
    });
    legendSwatches();
    ensureCanvas(map);
    schedule();
  }

  var before = GP.initDistrict;
  GP.initDistrict = function () {
    before.apply(this, arguments);
    initLabels();
  };
  GP.onTile = onTile;
  GP.labels = {state: state, redraw: schedule, anchorOf: anchorOf};
  window.gpLabels = state;
})();
