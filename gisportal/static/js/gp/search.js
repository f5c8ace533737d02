/* gisportal search box: /api/search and what it answers — a parcel, the parcels that
 * share a sheet and parcel number (to pick one), places, parcels by address, projects
 * and plan areas by name — and the commune picker's sheet/parcel form. */
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

  function fitBox(bb) {
    if (st.map && bb && bb.length === 4 && bb.every(isFinite)) {
      st.map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]]);
      return true;
    }
    return false;
  }

  function heading(key) {
    var h = el("h3"); h.appendChild(label(key)); return h;
  }

  /* A button of a result list: the title, then a small line of details. */
  function choiceButton(title, details, onClick) {
    var b = el("button", "gp-choice", title);
    b.type = "button";
    var more = details.filter(function (d) { return d; }).join(" · ");
    if (more) { b.appendChild(el("span", "lv", more)); }
    if (onClick) { b.addEventListener("click", onClick); } else { b.disabled = true; }
    return b;
  }

  /* A parcel to pick (same sheet/parcel in several communes, or found by address):
   * a tap looks up exactly that parcel, in its own district. */
  function parcelItem(c) {
    var commune = (c.commune_name || c.commune || "?") + (c.commune ? " (" + c.commune + ")" : "");
    var title = t("sheet_short") + " " + c.sheet + ", " + t("parcel_short").toLowerCase() +
      " " + c.parcel + " — " + commune;
    var details = [c.unit_today ? t("now_in") + " " + c.unit_today : null, c.address, c.land_use];
    return choiceButton(title, details, function () {
      var q = {district: c.district, sheet: c.sheet, parcel: c.parcel};
      if (c.commune) { q.commune = c.commune; }
      if (c.point) { placeMarker(c.point.lat, c.point.lon); flyTo(c.point.lat, c.point.lon); }
      GP.lookup(q);
    });
  }

  function list(items, make) {
    var ul = el("ul", "gp-places");
    items.forEach(function (x) { var li = el("li"); li.appendChild(make(x)); ul.appendChild(li); });
    return ul;
  }

  function showChoices(body) {
    st.result.replaceChildren();
    st.result.appendChild(heading("choices_found"));
    st.result.appendChild(list(body.choices || [], parcelItem));
  }

  function placeItem(p) {
    // Today's units (p.current) by their own level; the boundary layers' communes are
    // the former ones, of any level.
    var lv = p.level === "district" ? t("level_district") :
      (p.current && S["level_" + p.level] ? t("level_" + p.level) : t("commune"));
    var note = p.note ? (CFG.lang === "en" ? (p.note_en || p.note) : p.note) : null;
    var box = el("div");
    box.appendChild(choiceButton(p.name, [lv + (p.code ? " · " + p.code : "")],
      p.bbox && p.bbox.length === 4 ? function () { fitBox(p.bbox); } : null));
    if (note) { box.appendChild(el("div", "gp-note", note)); }  // a former commune's name matched
    return box;
  }

  function projectItem(p) {
    var kind = t(p.kind === "annual_plan" ? "kind_annual_plan" : "kind_plan") +
      (p.year ? " " + p.year : "");
    return choiceButton(p.name || p.code || "?", [kind, p.code, p.land_use,
      p.district !== conf.district ? p.district_name : null], function () {
      if (p.district !== conf.district && conf.district && p.point) {
        location.href = "/districts/" + encodeURIComponent(p.district) + "#17/" +
          p.point.lat + "/" + p.point.lon;
        return;
      }
      if (!fitBox(p.bbox) && p.point) { flyTo(p.point.lat, p.point.lon); }
    });
  }

  function showPlaces(body) {
    var places = body.places || [], parcels = body.parcels || [], projects = body.projects || [];
    st.result.replaceChildren();
    if (!places.length && !parcels.length && !projects.length) {
      showMessage("no_places", "gp-empty");
      return;
    }
    if (places.length) {
      st.result.appendChild(heading("places_found"));
      st.result.appendChild(list(places, placeItem));
    }
    if (parcels.length) {
      st.result.appendChild(heading("parcels_found"));
      st.result.appendChild(list(parcels, parcelItem));
    }
    if (projects.length) {
      st.result.appendChild(heading("projects_found"));
      st.result.appendChild(list(projects, projectItem));
    }
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
        if (res.status === 200 && body.kind === "places") { showPlaces(body); return; }
        if (res.status === 200 && body.kind === "choices") { showChoices(body); return; }
        if (res.status === 200 && body.result) {
          var pt = (body.result.parcel && body.result.parcel.point) || body.point;
          showResult(body.result);
          if (pt) { placeMarker(pt.lat, pt.lon); flyTo(pt.lat, pt.lon); }
          return;
        }
        showMessage(res.status === 404 ? "not_found" : "search_error",
                    res.status === 404 ? "gp-empty" : "gp-error");
        GP.showErrorDetail(body.error);
      })
      .catch(function () { st.result.removeAttribute("aria-busy"); showMessage("search_error", "gp-error"); });
  }

  function initSearch() {
    var form = document.getElementById("gp-search");
    var input = document.getElementById("gp-search-q");
    if (form && input) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var q = input.value.trim();
        if (q) { search(q); }
      });
    }
    /* The commune picker: sheet + parcel [+ commune], asked as the search box would. */
    var pf = document.getElementById("gp-parcel-form");
    if (pf) {
      pf.addEventListener("submit", function (e) {
        e.preventDefault();
        var sheet = pf.elements.sheet.value.trim(), parcel = pf.elements.parcel.value.trim();
        var commune = pf.elements.commune.value;
        if (sheet && parcel) { search(sheet + "/" + parcel + (commune ? " " + commune : "")); }
      });
    }
  }

  GP.initSearch = initSearch;
  GP.search = search;
})();
