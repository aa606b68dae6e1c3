// The base map every page shares (Leaflet, served by this server from the npm package): district
// outlines, and underneath them the on-premise tile service if one is configured (GET /api/map).
"use strict";

const SEVERITY_COLOURS = { 1: "#ff3b30", 2: "#ff9500", 3: "#ffd60a", 4: "#34c759" };

// `view` ([lat, lon, zoom]) centres the map there; without it the map shows the whole city.
function baseMap(element, base, { view, ...options } = {}) {
  const map = L.map(element, { zoomSnap: 0.25, attributionControl: Boolean(base.tile_url), ...options });
  map.attributionControl?.setPrefix("Leaflet");  // a plain word: this machine may not reach leafletjs.com
  if (base.tile_url) {
    L.tileLayer(base.tile_url, { maxZoom: base.max_zoom, attribution: base.attribution }).addTo(map);
  }
  const districts = L.geoJSON(base.districts, {
    style: { color: "#5b7c99", weight: 1.2, fillColor: "#1d3347", fillOpacity: base.tile_url ? 0.05 : 0.55 },
    interactive: false,
  });
  // A view first: Leaflet draws vectors only on a map that has one.
  if (view) map.setView([view[0], view[1]], view[2]); else map.fitBounds(districts.getBounds());
  districts.addTo(map);
  return { map, districts };
}

function severityMarker(lat, lon, severity, radius = 9) {
  return L.circleMarker([lat, lon], { radius, color: "#fff", weight: 2, fillColor: SEVERITY_COLOURS[severity] ?? "#888",
                                      fillOpacity: 0.95 });
}
