/* The planner pages: a job's progress bar, and the review page's findings table and map.
 *
 * Job page: polls /api/jobs/<id> every second while the job runs (the state lives on
 * the server, so closing and reopening the page picks it up again) and reloads the
 * page once the job is finished, when the server renders its outcome.
 *
 * Review page: the findings come a page at a time from /api/versions/<id>/findings
 * (filtered by severity and rule) into the table and onto the map; the uploaded
 * features come from /api/versions/<id>/features, whole for a small layer, else for the
 * box in view from a zoom level on. Text from the data goes in as text (textContent),
 * never as HTML.
 */
(function () {
  "use strict";

  var FINAL = ["done", "failed", "cancelled"];
  var COLORS = {error: "#c62828", warning: "#ef6c00", info: "#1565c0"};
  var strings = {};

  function s(key) {
    var pair = strings[key];
    return pair ? pair[0] : key;
  }

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_m, k) {
      return values[k] === undefined ? "" : String(values[k]);
    });
  }

  function getJSON(url) {
    return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        return r.json().then(function (data) {
          if (!r.ok) { throw new Error(data.error ? data.error.message : String(r.status)); }
          return data;
        });
      });
  }

  function text(el, value) {
    if (el) { el.textContent = value; }
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // -- the job page ------------------------------------------------------------------------

  function job() {
    var cfg = JSON.parse(document.getElementById("gp-job-config").textContent);
    var which = cfg.lang === "en" ? 1 : 0;
    var bar = document.getElementById("gp-job-bar");
    window.gpJob = {polls: 0, state: null};

    function show(j) {
      bar.value = j.percent;
      bar.textContent = j.percent + "%";
      text(document.getElementById("gp-job-percent"), j.percent + "%");
      text(document.getElementById("gp-job-stage"), j.labels.stage[which]);
      text(document.getElementById("gp-job-state"), j.labels.state[which]);
      text(document.getElementById("gp-job-message"), j.message || "");
    }

    function poll() {
      getJSON(cfg.api).then(function (data) {
        var j = data.job;
        window.gpJob.polls += 1;
        window.gpJob.state = j.state;
        show(j);
        if (FINAL.indexOf(j.state) >= 0) {
          location.reload();
          return;
        }
        setTimeout(poll, 1000);
      }).catch(function (err) {
        text(document.getElementById("gp-job-message"), err.message);
        setTimeout(poll, 3000);
      });
    }

    setTimeout(poll, 500);
  }

  // -- the review page ---------------------------------------------------------------------

  function keyText(key) {
    if (!key) { return ""; }
    return Object.keys(key).map(function (k) { return k + " " + key[k]; }).join(" · ");
  }

  function popupBox(title, rows) {
    var box = document.createElement("div");
    var b = document.createElement("b");
    b.textContent = title;
    box.appendChild(b);
    rows.forEach(function (row) {
      if (row === null || row === undefined || row === "") { return; }
      var p = document.createElement("div");
      p.textContent = row;
      box.appendChild(p);
    });
    return box;
  }

  function review() {
    var doc = JSON.parse(document.getElementById("gp-review-config").textContent);
    var cfg = doc.config;
    strings = doc.strings;
    var en = cfg.lang === "en";
    var map = window[cfg.map];
    var note = document.getElementById("gp-review-note");
    var state = {severity: "", rule: "", offset: 0, total: 0, byN: {}};
    window.gpReview = {map: map, findings: 0, features: 0, featuresLoaded: false,
                       findingsLoaded: false, rows: 0};

    var dataLayer = L.geoJSON(null, {
      style: {color: "#4a4a4a", weight: 1, fillColor: "#8ab4e0", fillOpacity: 0.2},
      onEachFeature: function (f, layer) {
        var p = f.properties || {};
        layer.bindPopup(function () {
          var rows = cfg.key.filter(function (k) { return p[k] !== undefined && p[k] !== null; })
            .map(function (k) { return k + ": " + p[k]; });
          return popupBox(s("pl_map_data"), rows);
        });
      }
    }).addTo(map);
    var findingsLayer = L.geoJSON(null, {
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, {radius: 7});
      },
      style: function (f) {
        var c = COLORS[f.properties.severity] || "#555";
        return {color: c, weight: 3, fillColor: c, fillOpacity: 0.45};
      },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        state.byN[p.n] = layer;
        layer.on("click", function () { select(p.n, false); });
        layer.bindPopup(function () {
          return popupBox(p.rule + " · " + s("pl_sev_" + p.severity),
                          [(p.row === null ? "" : s("pl_row") + " " + p.row), keyText(p.key),
                           en ? p.message_en : p.message]);
        });
      }
    }).addTo(map);
    var overlays = {};
    overlays[s("pl_map_data")] = dataLayer;
    overlays[s("pl_map_findings")] = findingsLayer;
    L.control.layers(null, overlays, {collapsed: false}).addTo(map);
    window.gpReview.dataLayer = dataLayer;
    window.gpReview.findingsLayer = findingsLayer;

    // The uploaded features under the findings.
    var small = cfg.feature_count <= cfg.feature_limit;
    var seq = 0;
    function loadFeatures() {
      if (!small && map.getZoom() < cfg.min_zoom) {
        dataLayer.clearLayers();
        window.gpReview.features = 0;
        text(note, s("pl_zoom_in"));
        window.gpReview.featuresLoaded = true;
        return;
      }
      var url = cfg.features;
      if (!small) {
        var b = map.getBounds();
        url += "?bbox=" + [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
          .map(function (v) { return Math.max(-180, Math.min(180, v)).toFixed(6); }).join(",");
      }
      var mine = ++seq;
      getJSON(url).then(function (fc) {
        if (mine !== seq) { return; }
        dataLayer.clearLayers();
        dataLayer.addData(fc);
        findingsLayer.bringToFront();
        window.gpReview.features = fc.features.length;
        text(note, fc.page.complete ? "" : fill(s("pl_shown_part"),
                                                {shown: fc.page.returned, total: fc.page.total}));
        window.gpReview.featuresLoaded = true;
      }).catch(function (err) {
        text(note, s("pl_load_error") + ": " + err.message);
        window.gpReview.featuresLoaded = true;
      });
    }
    loadFeatures();
    if (!small) { map.on("moveend", debounce(loadFeatures, 250)); }

    // The findings: table and map, one page at a time.
    var table = document.getElementById("gp-findings-table");
    var filter = document.getElementById("gp-findings-filter");
    if (!cfg.findings || !table) {
      window.gpReview.findingsLoaded = true;
      return;
    }
    var body = table.querySelector("tbody");

    function select(n, zoom) {
      Array.prototype.forEach.call(body.querySelectorAll("tr.gp-sel"), function (tr) {
        tr.classList.remove("gp-sel");
      });
      var tr = body.querySelector('tr[data-n="' + n + '"]');
      if (tr) {
        tr.classList.add("gp-sel");
        if (!zoom) { tr.scrollIntoView({block: "nearest"}); }
      }
      var layer = state.byN[n];
      if (layer && zoom) {
        if (layer.getBounds) {
          map.fitBounds(layer.getBounds(), {maxZoom: 19, padding: [40, 40]});
        } else {
          map.setView(layer.getLatLng(), Math.max(map.getZoom(), 18));
        }
        layer.openPopup();
      }
    }

    function cell(tr, value, cls) {
      var td = document.createElement("td");
      td.textContent = value === null || value === undefined ? "" : String(value);
      if (cls) { td.className = cls; }
      tr.appendChild(td);
    }

    function render(page) {
      body.textContent = "";
      page.findings.features.forEach(function (f) {
        var p = f.properties;
        var tr = document.createElement("tr");
        tr.setAttribute("data-n", p.n);
        tr.setAttribute("data-rule", p.rule);
        tr.setAttribute("data-severity", p.severity);
        cell(tr, p.n + 1);
        cell(tr, s("pl_sev_" + p.severity), "gp-pl-sev " + p.severity);
        cell(tr, p.rule);
        cell(tr, p.row);
        cell(tr, keyText(p.key));
        cell(tr, en ? p.message_en : p.message);
        tr.addEventListener("click", function () { select(p.n, true); });
        body.appendChild(tr);
      });
      state.byN = {};
      findingsLayer.clearLayers();
      findingsLayer.addData({type: "FeatureCollection", features:
        page.findings.features.filter(function (f) { return f.geometry; })});
      state.total = page.total;
      text(document.getElementById("gp-findings-range"), page.total ? fill(s("pl_page"), {
        first: page.offset + 1, last: page.offset + page.returned, total: page.total}) : "0");
      document.getElementById("gp-findings-prev").disabled = page.offset <= 0;
      document.getElementById("gp-findings-next").disabled = page.complete;
      window.gpReview.rows = page.returned;
      window.gpReview.findings = findingsLayer.getLayers().length;
      window.gpReview.findingsLoaded = true;
    }

    var fseq = 0;
    function loadFindings() {
      var q = ["limit=" + cfg.findings_limit, "offset=" + state.offset];
      if (state.severity) { q.push("severity=" + encodeURIComponent(state.severity)); }
      if (state.rule) { q.push("rule=" + encodeURIComponent(state.rule)); }
      var mine = ++fseq;
      window.gpReview.findingsLoaded = false;
      text(document.getElementById("gp-findings-range"), s("pl_loading"));
      getJSON(cfg.findings + "?" + q.join("&")).then(function (page) {
        if (mine === fseq) { render(page); }
      }).catch(function (err) {
        text(document.getElementById("gp-findings-range"), s("pl_load_error") + ": " + err.message);
        window.gpReview.findingsLoaded = true;
      });
    }

    filter.addEventListener("change", function () {
      state.severity = filter.elements.severity.value;
      state.rule = filter.elements.rule.value;
      state.offset = 0;
      loadFindings();
    });
    filter.addEventListener("submit", function (e) { e.preventDefault(); });
    Array.prototype.forEach.call(filter.querySelectorAll("button[data-page]"), function (b) {
      b.addEventListener("click", function () {
        var step = parseInt(b.getAttribute("data-page"), 10) * cfg.findings_limit;
        state.offset = Math.max(0, state.offset + step);
        loadFindings();
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll(".gp-rule-link"), function (a) {
      a.addEventListener("click", function () {
        filter.elements.rule.value = a.getAttribute("data-rule");
        filter.elements.severity.value = "";
        state.rule = filter.elements.rule.value;
        state.severity = "";
        state.offset = 0;
        loadFindings();
      });
    });
    loadFindings();
  }

  window.GPPlanner = {job: job, review: review};
})();
