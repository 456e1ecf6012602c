/* The public map: markers loaded by viewport (cells from the server at low zoom, points with
   Leaflet.markercluster when few), filters, a marker's details, and the open-data dialog.
   Texts come translated from the page (#map-text); nothing is loaded from outside the engine
   but the tiles of the configured tile server. */
(function () {
  "use strict";
  const box = document.getElementById("map");
  if (!box || !window.L) { return; }
  const text = JSON.parse(document.getElementById("map-text").textContent);
  const status = document.getElementById("map-status");
  const notice = document.getElementById("tiles-notice");
  const filters = document.getElementById("map-filters");
  const say = (key, values) => (text[key] || key).replace(/\{(\w+)\}/g, (_, name) => String(values[name]));

  const map = L.map(box, { worldCopyJump: true, minZoom: 1, maxZoom: 19 }).setView([20, 0], 2);
  const showNotice = () => { notice.hidden = false; box.classList.add("no-tiles"); };
  if (box.dataset.tiles) {
    const tiles = L.tileLayer(box.dataset.tiles, { attribution: box.dataset.attribution, maxZoom: 19 });
    tiles.on("tileerror", showNotice);
    tiles.addTo(map);
  } else {
    showNotice();
  }

  const points = L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 50 });
  const cells = L.layerGroup();
  map.addLayer(points);
  map.addLayer(cells);

  const wrap = (v) => ((((v + 180) % 360) + 360) % 360) - 180;
  function bbox() {
    const b = map.getBounds();
    let west = b.getWest(), east = b.getEast();
    if (east - west >= 360) { west = -180; east = 180; } else {
      const span = east - west;
      west = wrap(west);
      east = west + span;
      if (east > 180) { east -= 360; }
    }
    const south = Math.max(-90, b.getSouth()), north = Math.min(90, b.getNorth());
    return [west, south, east, north].map((v) => v.toFixed(6)).join(",");
  }

  function query() {
    const params = new URLSearchParams();
    params.set("bbox", bbox());
    params.set("zoom", String(Math.max(0, Math.min(22, Math.round(map.getZoom())))));
    for (const [name, value] of new FormData(filters)) {
      if (String(value).trim()) { params.set(name, String(value).trim()); }
    }
    return params;
  }

  let pending = null;
  let fitted = false;
  function clusterIcon(count) {
    const size = count < 10 ? "small" : count < 100 ? "medium" : "large";
    const inner = document.createElement("div");
    const label = document.createElement("span");
    label.textContent = String(count);
    inner.appendChild(label);
    return L.divIcon({ html: inner, className: "marker-cluster marker-cluster-" + size, iconSize: L.point(40, 40) });
  }

  function draw(found) {
    points.clearLayers();
    cells.clearLayers();
    const spots = [];
    if (found.mode === "cells") {
      for (const cell of found.cells) {
        const where = L.latLng(cell.lat, cell.lon);
        spots.push(where);
        const marker = L.marker(where, { icon: clusterIcon(cell.count), title: say("cluster", { n: cell.count }),
                                         alt: say("cluster", { n: cell.count }), keyboard: true });
        marker.on("click", () => map.setView(where, Math.min(map.getZoom() + 2, 19)));
        cells.addLayer(marker);
      }
    } else {
      const made = found.points.map((point) => {
        const where = L.latLng(point.lat, point.lon);
        spots.push(where);
        const marker = L.marker(where, { title: say("marker", { id: point.id }), alt: say("marker", { id: point.id }),
                                         keyboard: true });
        marker.on("click", () => showDetails(point.id));
        return marker;
      });
      points.addLayers(made);
    }
    box.dataset.total = String(found.total);
    box.dataset.mode = found.mode;
    status.textContent = found.total === 1 ? text.shown_one : found.total ? say("shown", { n: found.total }) : text.none;
    if (!fitted && spots.length) {
      fitted = true;
      map.fitBounds(L.latLngBounds(spots).pad(0.2), { maxZoom: 12 });
    }
  }

  function load() {
    if (pending) { pending.abort(); }
    pending = new AbortController();
    status.textContent = text.loading;
    box.setAttribute("aria-busy", "true");
    fetch(box.dataset.markers + "?" + query().toString(), { signal: pending.signal, headers: { Accept: "application/json" } })
      .then((response) => response.ok ? response.json() : response.json().then((body) => Promise.reject(body)))
      .then((found) => { box.removeAttribute("aria-busy"); draw(found); })
      .catch((error) => {
        if (error && error.name === "AbortError") { return; }
        box.removeAttribute("aria-busy");
        status.textContent = text.failed + (error && error.error ? " " + error.error.message : "");
      });
  }

  let timer = null;
  map.on("moveend", () => { clearTimeout(timer); timer = setTimeout(load, 150); });
  filters.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  filters.addEventListener("reset", () => setTimeout(load, 0));

  /* a marker's details */
  const details = document.getElementById("details");
  const detailsBody = document.getElementById("details-body");
  let detailsOpener = null;
  function row(list, term, value) {
    if (value === null || value === undefined || value === "") { return; }
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = String(value); }
    list.append(dt, dd);
  }
  function showDetails(id) {
    detailsOpener = document.activeElement;
    fetch(box.dataset.details + id, { headers: { Accept: "application/json" } })
      .then((response) => response.ok ? response.json() : Promise.reject(new Error(String(response.status))))
      .then((obs) => {
        detailsBody.replaceChildren();
        for (const photo of obs.photos) {
          const img = document.createElement("img");
          img.src = photo.url;
          img.alt = say("photo", { id: obs.id });
          img.className = "photo";
          detailsBody.appendChild(img);
        }
        const list = document.createElement("dl");
        row(list, text.kind, obs.kind);
        row(list, text.day, obs.day);
        if (obs.place) {
          row(list, text.place, obs.place.lat.toFixed(4) + ", " + obs.place.lon.toFixed(4) +
              (obs.place.obscured ? " (" + text.generalised + ")" : ""));
        }
        let licence = obs.licence;
        if (obs.licence_url) {
          licence = document.createElement("a");
          licence.href = obs.licence_url;
          licence.rel = "license";
          licence.textContent = obs.licence;
        }
        row(list, text.licence, licence);
        row(list, text.recorded_by, obs.recorded_by);
        row(list, text.rights_holder, obs.rights_holder);
        detailsBody.appendChild(list);
        const names = Object.keys(obs.fields || {});
        if (names.length) {
          const heading = document.createElement("h3");
          heading.textContent = text.fields;
          const fields = document.createElement("dl");
          for (const name of names) {
            const value = obs.fields[name];
            row(fields, name, typeof value === "object" ? JSON.stringify(value) : value);
          }
          detailsBody.append(heading, fields);
        }
        details.dataset.observation = String(obs.id);
        details.hidden = false;
        details.focus();
      })
      .catch(() => { status.textContent = text.failed; });
  }
  document.getElementById("details-close").addEventListener("click", () => {
    details.hidden = true;
    (detailsOpener && document.body.contains(detailsOpener) ? detailsOpener : box).focus();
  });

  /* the open-data dialog: focus kept inside, Escape closes, focus back on the button */
  const dialog = document.getElementById("download-dialog");
  const opener = document.getElementById("open-download");
  const accept = document.getElementById("accept");
  const submit = document.getElementById("download-submit");
  const sync = () => { submit.disabled = !accept.checked; };
  opener.addEventListener("click", () => { sync(); dialog.showModal(); accept.focus(); });
  accept.addEventListener("change", sync);
  document.getElementById("download-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => opener.focus());
  dialog.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") { return; }
    const focusable = Array.from(dialog.querySelectorAll("a[href], input, button, select"))
      .filter((el) => !el.disabled && el.offsetParent !== null);
    if (!focusable.length) { return; }
    const first = focusable[0], last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  });
  document.getElementById("download-form").addEventListener("submit", (event) => {
    if (!accept.checked) { event.preventDefault(); return; }
    setTimeout(() => dialog.close(), 0);
  });

  load();
})();
