/* The map of an OGC API HTML page (/ogc/collections/<id>/items, …/items/<id>): the
 * page's features (lon/lat GeoJSON, in <script type="application/json" id="ogc-features">)
 * on a plain Leaflet map. No basemap: no request leaves the portal. A static file, not
 * an inline script, so the pages' Content-Security-Policy needs no exception for it. */
(function () {
  "use strict";
  var holder = document.getElementById("ogc-features");
  if (!holder || !document.getElementById("ogc-map")) { return; }
  var data = JSON.parse(holder.textContent);
  var map = L.map("ogc-map", {attributionControl: false});
  var layer = L.geoJSON({type: "FeatureCollection", features: data}, {
    style: {color: "#0b5394", weight: 1, fillOpacity: 0.15},
    onEachFeature: function (f, l) { l.bindTooltip(String(f.id)); }
  }).addTo(map);
  var bounds = layer.getBounds();
  if (bounds.isValid()) { map.fitBounds(bounds, {padding: [10, 10]}); } else { map.setView([11.9, 108.3], 9); }
  window.ogcMap = map;
})();
