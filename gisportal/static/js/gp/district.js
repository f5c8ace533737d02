/* gisportal district page start-up: the view from the permalink, clicks that look up
 * the parcel, the search box, the plan opacity slider and the permalink itself. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  function lookup(params) { return GP.lookup(params); }
  function placeMarker(lat, lon) { GP.placeMarker(lat, lon); }
  function initTooltips() { GP.initTooltips(); }
  function initSearch() { GP.initSearch(); }

  function updateHash() {
    if (!st.map) { return; }
    var c = st.map.getCenter(), z = st.map.getZoom();
    var h = "#" + z + "/" + c.lat.toFixed(6) + "/" + c.lng.toFixed(6);
    if (st.selected) {
      h += "/" + [st.selected.commune || "", st.selected.sheet, st.selected.parcel]
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
    st.map = window[CFG.map];
    st.result = document.getElementById("gp-result");
    if (!st.map || !st.result) { return; }
    window.gpMap = st.map;
    var fromHash = parseHash();
    if (fromHash) {
      st.map.setView([fromHash.lat, fromHash.lon], fromHash.z);
    } else if (conf.bounds) {
      st.map.fitBounds(conf.bounds, {animate: false});
    }
    st.map.on("click", function (e) {
      placeMarker(e.latlng.lat, e.latlng.lng);
      /* No district in the query: the server finds the district from the published
       * outlines, so a click across the border answers for the neighbouring district,
       * and one outside every district says so. */
      lookup({lat: e.latlng.lat.toFixed(7), lon: e.latlng.lng.toFixed(7)});
    });
    st.map.on("moveend", updateHash);
    initKeyboard();
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

  /* The map by keyboard: Leaflet's arrows and +/−, and Enter to look up the parcel at
   * the centre, as a click would; the container names those keys to screen readers. */
  function initKeyboard() {
    var box = st.map.getContainer();
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", GP.t("map_keys"));
    box.addEventListener("keydown", function (e) {
      if (e.key !== "Enter" || e.target !== box) { return; }
      e.preventDefault();
      var c = st.map.getCenter();
      placeMarker(c.lat, c.lng);
      lookup({lat: c.lat.toFixed(7), lon: c.lng.toFixed(7)});
    });
  }

  /* Phones: the panel is a bottom sheet (portal.css). Its handle folds and opens it; an
   * answer in the panel (a look-up, a search) opens it, scrolled to the answer. */
  function initSheet() {
    var panel = document.getElementById("gp-panel");
    var handle = document.getElementById("gp-sheet-handle");
    if (!panel || !handle) { return; }
    var text = handle.querySelector(".gp-handle-text");
    function set(state) {  // "folded", "half" or "open"
      panel.classList.toggle("gp-folded", state === "folded");
      panel.classList.toggle("gp-open", state === "open");
      handle.setAttribute("aria-expanded", state === "folded" ? "false" : "true");
      if (text) { text.textContent = text.getAttribute(state === "folded" ? "data-closed" : "data-open"); }
    }
    handle.addEventListener("click", function () {
      set(panel.classList.contains("gp-folded") ? "open" : "folded");
    });
    var result = document.getElementById("gp-result");
    if (result && window.MutationObserver) {
      new MutationObserver(function () {
        if (result.getAttribute("aria-busy") === "true") { return; }
        set("open");
        if (window.matchMedia && window.matchMedia("(max-width: 700px)").matches) {
          panel.scrollTop = Math.max(0, result.offsetTop - handle.offsetHeight);
        }
      }).observe(result, {childList: true});
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initSheet);
  } else {
    initSheet();
  }

  GP.updateHash = updateHash;
  GP.initDistrict = initDistrict;
})();
