/* gisportal look-up panel: the /api/lookup answer for a parcel or a point, shown in
 * the side panel, and the marker where it was asked. */
(function () {
  "use strict";
  var GP = window.GP, CFG = GP.config, conf = CFG.config || {};
  var st = GP.state;
  var t = GP.t, el = GP.el, label = GP.label, row = GP.row, chip = GP.chip;
  var colorOf = GP.colorOf, luName = GP.luName, fmtArea = GP.fmtArea, fmtShare = GP.fmtShare;
  function highlight(parcel) { GP.highlight(parcel); }
  function updateHash() { GP.updateHash(); }

  /* The annual land-use plans' projects of a look-up answer (newest year first):
   * "Kế hoạch sử dụng đất năm 2026: <name> (<code>)", the land use and the areas. */
  function annualBlock(items, key) {
    if (!items || !items.length) { return null; }
    var box = el("div", "gp-annual");
    var h = el("h3"); h.appendChild(label(key)); box.appendChild(h);
    var ul = el("ul", "gp-annual-list");
    items.forEach(function (x) {
      var li = el("li");
      var head = el("div", "gp-annual-head");
      head.appendChild(el("b", null, t("annual_year") + " " + (x.year === null ? "?" : x.year) + ": "));
      head.appendChild(document.createTextNode(String(x.name || "") + (x.code ? " (" + x.code + ")" : "")));
      li.appendChild(head);
      var nm = CFG.lang === "en" ? (x.land_use_name_en || luName(x.land_use, x.land_use_name))
        : (x.land_use_name || luName(x.land_use));
      var extra = t("project_area") + " " + fmtArea(x.area_m2);
      if (x.overlap_m2 !== null && x.overlap_m2 !== undefined) {
        extra += " · " + t("annual_overlap") + " " + fmtArea(x.overlap_m2) + " (" + fmtShare(x.share) + ")";
      }
      li.appendChild(chip(x.land_use, nm, x.color || colorOf(x.land_use), extra));
      if (x.decision) {
        li.appendChild(el("div", "gp-annual-decision", t("annual_decision") + ": " + x.decision));
      }
      ul.appendChild(li);
    });
    box.appendChild(ul);
    return box;
  }

  /* The construction and urban plans over the parcel (the answer's zoning): each plan
   * linked to its page, the lots with share and indicators, the road's part. */
  function fmtPlain(v) {  // 60 → "60", 2.4 → "2,4", 12.25 → "12,25"
    var n = Number(v);
    var d = Number.isInteger(n) ? 0 : (Math.abs(Math.round(n * 10) - n * 10) < 1e-9 ? 1 : 2);
    return GP.fmtNumber(n, d);
  }

  function zoningBlock(items) {
    if (!items || !items.length) { return null; }
    var box = el("div", "gp-zoning");
    var h = el("h3"); h.appendChild(label("zoning_plans")); box.appendChild(h);
    items.forEach(function (z) {
      var pr = z.project || {};
      var head = el("p", "gp-zoning-head");
      var a = el("a", null, pr.name || pr.id);
      a.href = pr.url || ("/projects/" + encodeURIComponent(pr.id));
      head.appendChild(a);
      if (pr.decision && pr.decision.number) {
        head.appendChild(document.createTextNode(" — " + pr.decision.number +
          (pr.decision.date ? " " + t("dated") + " " + GP.fmtDate(pr.decision.date) : "")));
      }
      box.appendChild(head);
      var ul = el("ul", "gp-planned");
      (z.lots || []).forEach(function (l) {
        var area = (l.area_m2 !== null && l.area_m2 !== undefined)
          ? fmtArea(l.area_m2) + " · " + fmtShare(l.share) : "";
        var parts = [];
        if (l.max_density_pct !== null && l.max_density_pct !== undefined) { parts.push(t("project_density") + " " + fmtPlain(l.max_density_pct) + " %"); }
        if (l.floors_max !== null && l.floors_max !== undefined) {
          parts.push(t("project_floors") + " " + (l.floors_min !== null && l.floors_min !== l.floors_max ? l.floors_min + "–" : "") + l.floors_max);
        }
        if (l.far !== null && l.far !== undefined) { parts.push(t("project_far") + " " + fmtPlain(l.far)); }
        var nm = CFG.lang === "en" ? (l.function_name_en || l.function_name) : (l.function_name || l.function_name_en);
        var li = el("li");
        li.appendChild(chip(l.code || "", (l.function || "") + (nm ? " — " + nm : ""), l.color || "#ccc", area));
        if (parts.length) { li.appendChild(el("div", "gp-zoning-indicators", parts.join(" · "))); }
        ul.appendChild(li);
      });
      box.appendChild(ul);
      var red = z.red_line;
      if (red && red.area_m2 !== null && red.area_m2 !== undefined) {
        var txt = t("zoning_road") + ": " + fmtArea(red.area_m2) + " (" + fmtShare(red.share) + ")";
        var roads = (red.roads || []).filter(function (r) { return r.name; }).map(function (r) {
          return r.name + (r.width_m !== null && r.width_m !== undefined ? " (" + t("project_width") + " " + fmtPlain(r.width_m) + " m)" : "");
        });
        if (roads.length) { txt += " — " + roads.join(", "); }
        if (red.building_line_m !== null && red.building_line_m !== undefined) {
          txt += " — " + t("zoning_setback") + " " + fmtPlain(red.building_line_m) + " m";
        }
        box.appendChild(el("p", "gp-zoning-road", txt));
      }
    });
    return box;
  }

  function showMessage(key, cls) {
    st.result.replaceChildren();
    var p = el("p", cls || "gp-hint");
    p.appendChild(label(key));
    st.result.appendChild(p);
  }

  function showResult(data) {
    st.result.replaceChildren();
    var parcel = data && data.parcel;
    if (!parcel) {
      /* A point with no parcel is an answer (HTTP 200), with the reason and the plan
       * zone there, if any: a road, a river, or outside every district. */
      showMessage(data && data.reason === "outside_districts" ? "outside_districts" : "no_parcel",
                  "gp-empty");
      var away = elsewhere(data);
      if (away) { st.result.appendChild(away); }
      var here = (data && data.planned) || [];
      if (here.length) {
        var hh = el("h3"); hh.appendChild(label("planned_here")); st.result.appendChild(hh);
        var list = el("ul", "gp-planned");
        here.forEach(function (z) {
          var li = el("li");
          var nm = CFG.lang === "en" ? (z.name_en || luName(z.code, z.name)) : (z.name || z.name_en);
          li.appendChild(chip(z.code, nm, z.color || colorOf(z.code)));
          list.appendChild(li);
        });
        st.result.appendChild(list);
      }
      var annualHere = annualBlock(data && data.annual_plans, "annual_here");
      if (annualHere) { st.result.appendChild(annualHere); }
      var zoningHere = zoningBlock(data && data.zoning);
      if (zoningHere) { st.result.appendChild(zoningHere); }
      st.selected = null; highlight(null); updateHash();
      return;
    }
    var h = el("h2"); h.appendChild(label("parcel")); st.result.appendChild(h);
    var other = elsewhere(data);
    if (other) { st.result.appendChild(other); }
    var dl = el("dl", "gp-dl");
    var cname = parcel.commune_name || (conf.communes || {})[String(parcel.commune)];
    row(dl, "commune", cname ? cname + " (" + parcel.commune + ")" : (parcel.commune || "—"));
    var units = data.units;
    if (units) {  // today's unit and the former ones an older certificate names
      var now = units.current ? [units.current] : (units.current_options || []);
      row(dl, "unit_today", now.map(function (u) { return u.name + " (" + u.code + ")"; })
        .join(" " + t("or") + " "));
      row(dl, "unit_former", (units.former || []).map(function (u) { return u.name; }).join(", "));
    }
    row(dl, "sheet", parcel.sheet);
    row(dl, "parcel_no", parcel.parcel);
    row(dl, "area", fmtArea(parcel.area_m2));
    var cu = parcel.current_use || "";
    row(dl, "current_use", chip(cu, luName(cu, parcel.current_use_name), colorOf(cu)));
    st.result.appendChild(dl);

    var h2 = el("h3"); h2.appendChild(label("planned_use")); st.result.appendChild(h2);
    var planned = data.planned || [];
    if (!planned.length) {
      var p = el("p", "gp-empty"); p.appendChild(label("no_plan")); st.result.appendChild(p);
    } else {
      var ul = el("ul", "gp-planned");
      planned.forEach(function (z) {
        var li = el("li");
        var name = CFG.lang === "en" ? (z.name_en || z.name) : (z.name || z.name_en);
        li.appendChild(chip(z.code, name, z.color || colorOf(z.code),
          fmtArea(z.area_m2) + " · " + fmtShare(z.share)));
        ul.appendChild(li);
      });
      st.result.appendChild(ul);
    }
    var plan = data.plan || {};
    if (plan.status === "consultation") {
      // A draft for comment is never shown as the plan in force.
      st.result.appendChild(el("p", "gp-consultation",
        CFG.lang === "en" ? plan.status_label_en : plan.status_label));
    }
    var h3 = el("h3"); h3.appendChild(label("decision")); st.result.appendChild(h3);
    var dp = el("p", "gp-decision");
    if (plan.decision) {
      var txt = String(plan.decision);
      if (plan.date) { txt += " — " + t("dated") + " " + GP.fmtDate(plan.date); }
      if (plan.authority) { txt += " — " + plan.authority; }
      dp.textContent = txt;
    } else {
      dp.appendChild(label("no_decision"));
    }
    st.result.appendChild(dp);
    var annual = annualBlock(data.annual_plans, "annual_plans");
    if (annual) { st.result.appendChild(annual); }
    var zoning = zoningBlock(data.zoning);
    if (zoning) { st.result.appendChild(zoning); }
    if (conf.parcel_sheet && parcel.sheet !== undefined && parcel.parcel !== undefined) {
      var a = el("a", "gp-sheet-link", t("sheet_link"));
      a.href = "/parcels/" + encodeURIComponent(parcel.district || conf.district) + "/" +
        encodeURIComponent(parcel.sheet) + "/" + encodeURIComponent(parcel.parcel) +
        (parcel.commune ? "?commune=" + encodeURIComponent(parcel.commune) : "");
      st.result.appendChild(el("p")).appendChild(a);
    }
    /* A parcel of the neighbouring district (a click across the border) is shown but
     * neither highlighted nor put in the permalink: both name this page's district. */
    var ours = !conf.district || !parcel.district || parcel.district === conf.district;
    st.selected = ours ? {commune: parcel.commune, sheet: parcel.sheet, parcel: parcel.parcel} : null;
    highlight(st.selected);
    if (parcel.point && isFinite(parcel.point.lat) && isFinite(parcel.point.lon)) {
      placeMarker(parcel.point.lat, parcel.point.lon);
    }
    updateHash();
  }

  function placeMarker(lat, lon) {
    if (st.marker) { st.marker.setLatLng([lat, lon]); return; }
    st.marker = L.circleMarker([lat, lon], {radius: 7, color: "#0b5394", weight: 3,
      fillColor: "#ffffff", fillOpacity: 0.9, interactive: false}).addTo(st.map);
  }

  function lookup(params) {
    showMessage("loading");
    st.result.setAttribute("aria-busy", "true");
    var q = Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
    return fetch("/api/lookup?" + q, {headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (body) { return {status: r.status, body: body}; });
      })
      .then(function (res) {
        st.result.removeAttribute("aria-busy");
        if (res.status === 200) { showResult(res.body); return; }
        /* 404: a sheet/parcel key (from a permalink) that names no parcel. */
        showMessage(res.status === 404 ? "not_found" : "error",
                    res.status === 404 ? "gp-empty" : "gp-error");
        showErrorDetail(res.body && res.body.error);
      })
      .catch(function () { st.result.removeAttribute("aria-busy"); showMessage("error", "gp-error"); });
  }

  /* An API error's own sentence in the page's language, without the [where] tag that
   * is meant for staff (GP.errorText): a Vietnamese page never shows the English one,
   * and an error without a Vietnamese sentence gets a generic Vietnamese one. */
  function showErrorDetail(err) {
    if (!err) { return; }
    st.result.appendChild(el("p", "gp-error-detail", GP.errorText(err)));
  }

  /* Where an answer lies when it is not this page's district: a sentence and a link
   * to that district's map at the point (and its parcel, when there is one). */
  function elsewhere(data) {
    var parcel = data && data.parcel;
    var code = parcel ? parcel.district : data && data.district;
    if (!conf.district || !code || code === conf.district) { return null; }
    var name = (parcel && parcel.district_name) || data.district_name || code;
    var pt = (parcel && parcel.point) || data.point;
    var box = el("p", "gp-elsewhere");
    box.appendChild(document.createTextNode(t("elsewhere").replace("{name}", name) + " "));
    var a = el("a", null, t("open_map").replace("{name}", name));
    var hash = pt ? "#18/" + pt.lat + "/" + pt.lon : "";
    if (pt && parcel && parcel.sheet !== null && parcel.parcel !== null) {
      hash += "/" + [parcel.commune || "", parcel.sheet, parcel.parcel].map(function (v) {
        return encodeURIComponent(String(v));
      }).join("/");
    }
    a.href = "/districts/" + encodeURIComponent(code) + hash;
    box.appendChild(a);
    return box;
  }

  GP.showErrorDetail = showErrorDetail;
  GP.showMessage = showMessage;
  GP.showResult = showResult;
  GP.placeMarker = placeMarker;
  GP.lookup = lookup;
})();
