"""Video supervision of the service windows: cameras/ (what a camera is, the registry, its routes),
recording/ (full-time recording, retention, playback, signed evidence), analysis/ (worker processes,
detectors, supervision alerts), wall/ (tiles, the wall and focus sockets, the page)."""
