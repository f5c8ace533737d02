/* gisportal base maps: the switcher and the base drawn from our own data, the same on
 * the province page and a district page (gisportal.web.maps.base_map_config).
 *
 * The base maps an administrator enabled in maps/*.json (conf.basemaps: street map,
 * satellite imagery…) join the layer control's radio buttons after our own base, and
 * the choice is remembered in localStorage ("gp.basemap", one key for both pages). Our
 * own base needs no internet: a paper background, the communes in soft tints (boundary
 * tiles), roads and rivers as ribbons (plan zones coded DGT, SON/MNC/DTL, from the plan
 * tiles the plan layer decodes anyway: gp/map.js shares one decode), names from
 * gp/labels.js on a district page. Its sources (conf.base_tiles) are one per published
 * boundary and plan layer, each held to its district's bounds. With nothing enabled,
 * which is how the portal ships, no request leaves the portal. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  var KEY = "gp.basemap";

  function remembered() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }

  function remember(id) {
    try { window.localStorage.setItem(KEY, id); } catch (e) { /* private mode: not kept */ }
  }

  function hashOf(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) { h = (h * 31 + s.charCodeAt(i)) | 0; }
    return Math.abs(h);
  }

  function inList(list, value) { return (list || []).indexOf(value) >= 0; }

  /* Our own base: a layer group of vector-tile layers in the base pane, one per
   * tile source of conf.base_tiles (a district page has one boundary and one plan
   * source, the province page one of each per published district). */
  function ownBase(map) {
    var style = (conf.own_base || {}).style || {}, parts = [];
    var tints = style.commune_fill || ["#efe9dc"];
    var road = style.road || {}, water = style.water || {};
    var styles = {
      boundary: function (p) {
        if (p.level !== "commune") { return []; }
        return {fill: true, stroke: false, fillOpacity: 1,
                fillColor: tints[hashOf(String(p.code || p.name || "")) % tints.length]};
      },
      plan: function (p) {
        var c = GP.primaryCode(p.land_use);
        if (inList(style.road_codes, c)) {
          return {fill: true, fillColor: road.fillColor || "#fff", fillOpacity: 1,
                  color: road.color || "#999", weight: road.weight || 1, opacity: 1};
        }
        if (inList(style.water_codes, c)) {
          return {fill: true, fillColor: water.fillColor || "#b9dcf5", fillOpacity: 1,
                  color: water.color || "#6fa8d6", weight: water.weight || 0.8, opacity: 1};
        }
        return [];
      }
    };
    (conf.base_tiles || []).forEach(function (t) {
      var styleFn = styles[t.kind];
      if (!styleFn) { return; }
      var layerStyles = {};
      layerStyles[t.kind] = styleFn;
      var opts = {
        pane: "gpBase", interactive: false, nativeMaxZoom: t.zooms[1], maxZoom: 22,
        minZoom: t.min_zoom, attribution: "", rendererFactory: L.canvas.tile,
        vectorTileLayerStyles: layerStyles
      };
      if (t.bounds) { opts.bounds = L.latLngBounds(t.bounds); }
      parts.push(L.vectorGrid.protobuf(t.url, opts));
    });
    var group = L.layerGroup(parts);
    group.gpId = "own";
    return group;
  }

  function initBasemap() {
    var map = st.map;
    if (!map) { return; }
    var pane = map.getPane("gpBase") || map.createPane("gpBase");
    pane.style.zIndex = 150;  // under the overlays' tile pane (200)
    var paper = (((conf.own_base || {}).style || {}).paper) || "#f3f0e8";
    map.getContainer().style.setProperty("--gp-paper", paper);
    var bases = [ownBase(map)];
    var names = [(conf.own_base || {}).name || "Offline"];
    (conf.basemaps || []).forEach(function (b) {
      var layer = L.tileLayer(b.url, {attribution: b.attribution || "", maxNativeZoom: b.max_zoom || 19,
                                      maxZoom: 22, pane: "gpBase"});
      layer.gpId = b.id;
      bases.push(layer);
      names.push(b.name);
    });
    var control = window.gpLayerControl;
    if (control && control.addBaseLayer) {
      bases.forEach(function (layer, i) { control.addBaseLayer(layer, names[i]); });
    }
    // On a phone the open switcher would hide a third of the map: folded to its
    // button (a tap opens it, a tap on the map folds it again).
    if (control && control.collapse && map.getSize().x < 500) {
      // (as a control made folded: Leaflet unfolds one made open whenever a layer is
      // added to it, as the province page does with today's units)
      control.options.collapsed = true;
      control.collapse();
      map.on("click", control.collapse, control);
    }
    var ids = bases.map(function (l) { return l.gpId; });
    var want = remembered();
    if (!inList(ids, want)) {
      var shown = (conf.basemaps || []).filter(function (b) { return b.show; })[0];
      want = shown ? shown.id : "own";
    }
    var apply = function (layer) {
      var id = layer.gpId;
      map.getContainer().classList.toggle("gp-paper", id === "own");
      document.documentElement.setAttribute("data-basemap", id);
    };
    map.on("baselayerchange", function (e) {
      if (e.layer && e.layer.gpId) { apply(e.layer); remember(e.layer.gpId); }
    });
    var chosen = bases[ids.indexOf(want)] || bases[0];
    chosen.addTo(map);
    apply(chosen);
  }

  // Both pages: after their own start-up has set GP.state.map.
  ["initDistrict", "initProvince"].forEach(function (name) {
    var before = GP[name];
    GP[name] = function () {
      before.apply(this, arguments);
      initBasemap();
    };
  });
  GP.initBasemap = initBasemap;
})();
