/* gisportal map behaviour: the vector-tile layers' styles (maps/*.json "style"), the
 * looked-up parcel's highlight, tooltips, two VectorGrid fixes and the province page. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  var colorOf = GP.colorOf, el = GP.el;

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


  GP.style = style;
  GP.featureId = featureId;
  GP.highlight = highlight;
  GP.initTooltips = initTooltips;
  GP.initProvince = initProvince;
})();
