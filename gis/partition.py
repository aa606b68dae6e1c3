"""Split an area among sites: each site gets the part of the area nearer to it than to any other."""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from shapely.geometry.base import BaseGeometry


def voronoi_cells(sites: Sequence[tuple[float, float]], area: BaseGeometry) -> list[BaseGeometry]:
    """Voronoi cells of lon/lat sites clipped to `area`, in the order of `sites`.

    Computed in degrees; at the scale of one city the difference from a metric Voronoi diagram is
    small and the cells still tile the area exactly, which is what the jurisdictions need.
    """
    if len(sites) == 1:
        return [area]
    points = shapely.MultiPoint(list(sites))
    cells = shapely.voronoi_polygons(points, extend_to=area.envelope.buffer(1.0), ordered=True)
    return [shapely.make_valid(cell.intersection(area)) for cell in cells.geoms]
