/* A planning project's map (templates/project.html): its lots coloured by function with
   their codes (from zoom 16), the red and building lines, the project boundary; a click
   on a lot shows its function and indicators. The layers come as GeoJSON from
   /api/projects/<id>/<kind>.geojson (a plan has a few thousand lots at most). */
(function () {
  "use strict";

  function cfg() {
    var el = document.getElementById("gp-project-config");
    return el ? JSON.parse(el.textContent) : null;
  }

  /* Elements with text (never HTML parsed from data: names come from uploaded files). */
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function start() {
    var c = cfg();
    var box = document.getElementById("gp-project-map");
    if (!c || !box || !window.L) { return; }
    var conf = c.config, S = c.strings, lang = conf.lang;
    var styles = conf.styles;  // maps/project.json: the exported QML/SLD draw the same
    function copy(o) { var out = {}; Object.keys(o).forEach(function (k) { out[k] = o[k]; }); return out; }
    var t = function (k) { return S[k] ? S[k][0] : k; };
    var fmt = new Intl.NumberFormat(lang === "en" ? "en-GB" : "vi-VN", {maximumFractionDigits: 2});
    var map = L.map(box, {zoomSnap: 0.5, maxZoom: 20});
    var b = conf.project.bounds;
    if (b) { map.fitBounds([[b[1], b[0]], [b[3], b[2]]], {padding: [12, 12]}); }
    else { map.setView([11.94, 108.44], 12); }
    L.control.scale({imperial: false}).addTo(map);
    if (conf.area) {
      var area = copy(styles.project_area);
      area.fill = false;
      L.geoJSON(conf.area, {interactive: false, style: area}).addTo(map);
    }
    function labelsByZoom() {
      box.classList.toggle("gp-labels-off", map.getZoom() < 16);
    }
    map.on("zoomend", labelsByZoom);
    labelsByZoom();

    var present = {};
    var panel = document.getElementById("gp-project-lot");
    function showLot(p) {
      var rows = [[t("project_lot"), p.lot_code],
                  [t("project_function"), (p.function || "") + (p.function_name ? " — " + (lang === "en" ? p.function_name_en : p.function_name) : "")]];
      if (p.density_pct != null) { rows.push([t("project_density"), fmt.format(p.density_pct) + " %"]); }
      if (p.floors_min != null || p.floors_max != null) {
        var f = p.floors_min != null && p.floors_max != null && p.floors_min !== p.floors_max
          ? p.floors_min + "–" + p.floors_max : (p.floors_max != null ? p.floors_max : p.floors_min);
        rows.push([t("project_floors"), f]);
      }
      if (p.far != null) { rows.push([t("project_far"), fmt.format(p.far)]); }
      if (p.area_m2 != null) { rows.push(["m²", fmt.format(p.area_m2)]); }
      function list() {
        var dl = el("dl");
        rows.forEach(function (r) { dl.appendChild(el("dt", null, r[0])); dl.appendChild(el("dd", null, r[1])); });
        return dl;
      }
      if (panel) { panel.replaceChildren(list()); }
      return list();
    }

    var layers = conf.project.layers || {};
    if (layers.zoning_lots) {
      fetch(layers.zoning_lots).then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (gj) {
          L.geoJSON(gj, {
            style: function (f) {
              var st = copy(styles.zoning_lots);
              st.fillColor = f.properties.color || "#ccc";
              return st;
            },
            onEachFeature: function (f, layer) {
              var p = f.properties;
              present[p.function] = true;
              var label = el("span", null, p.lot_code || "");
              if (p.density_pct != null || p.floors_max != null) {
                label.appendChild(el("br"));
                label.appendChild(document.createTextNode(
                  (p.density_pct != null ? fmt.format(p.density_pct) + "%" : "") +
                  (p.floors_max != null ? " · " + p.floors_max + "T" : "")));
              }
              layer.bindTooltip(label, {permanent: true, direction: "center", className: "gp-lot-label"});
              layer.on("click", function (e) {
                L.popup().setLatLng(e.latlng).setContent(showLot(p)).openOn(map);
              });
            }
          }).addTo(map);
          var legend = document.getElementById("gp-project-legend");
          if (legend) {
            legend.replaceChildren.apply(legend, conf.legend.filter(function (e) { return present[e.code]; }).map(function (e) {
              var li = el("li");
              li.setAttribute("data-code", e.code);
              var sw = el("span", "sw");
              sw.style.background = e.color;
              li.appendChild(sw);
              li.appendChild(el("b", null, e.code));
              li.appendChild(document.createTextNode(" " + e.name));
              return li;
            }));
          }
        }).catch(function () {
          if (panel) { panel.textContent = t("project_no_layer"); }
        });
    }
    if (layers.red_lines) {
      fetch(layers.red_lines).then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
        .then(function (gj) {
          L.geoJSON(gj, {
            style: function (f) {
              var lines = styles.red_lines;
              return copy(lines[f.properties.line_type] || lines.other);
            },
            onEachFeature: function (f, layer) {
              var p = f.properties;
              var text = (p.line_type === "building_line" ? t("project_building_line") : t("project_red_line")) +
                (p.road_name ? " — " + p.road_name : "") +
                (p.width_m != null ? " — " + t("project_width") + " " + fmt.format(p.width_m) + " m" : "");
              layer.bindTooltip(el("span", null, text), {sticky: true});
            }
          }).addTo(map);
        }).catch(function () {});
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
