/* gisportal search box: /api/search, its list of places or the parcel it found. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  var el = GP.el, label = GP.label, t = GP.t, S = CFG.strings || {};
  function showMessage(key, cls) { GP.showMessage(key, cls); }
  function showResult(data) { GP.showResult(data); }
  function placeMarker(lat, lon) { GP.placeMarker(lat, lon); }

  function flyTo(lat, lon) {
    if (!st.map || !isFinite(lat) || !isFinite(lon)) { return; }
    var z = Math.max(st.map.getZoom(), 17);
    if (isFinite(st.map.getMaxZoom())) { z = Math.min(z, st.map.getMaxZoom()); }
    st.map.flyTo([lat, lon], z);
  }

  function showPlaces(places) {
    st.result.replaceChildren();
    if (!places.length) { showMessage("no_places", "gp-empty"); return; }
    var h = el("h3"); h.appendChild(label("places_found")); st.result.appendChild(h);
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
          st.map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]]);
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
    st.result.appendChild(ul);
  }

  function search(q) {
    showMessage("searching");
    st.result.setAttribute("aria-busy", "true");
    var url = "/api/search?q=" + encodeURIComponent(q) +
      (conf.district ? "&district=" + encodeURIComponent(conf.district) : "");
    return fetch(url, {headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      })
      .then(function (res) {
        st.result.removeAttribute("aria-busy");
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
        if (msg) { st.result.appendChild(el("p", "gp-error-detail", msg)); }
      })
      .catch(function () { st.result.removeAttribute("aria-busy"); showMessage("search_error", "gp-error"); });
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

  GP.initSearch = initSearch;
})();
