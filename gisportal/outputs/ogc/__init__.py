"""OGC API – Features (Part 1 Core, Part 2 CRS) over the published layers, as plain functions.

Each published layer of each district is one collection (``678-parcels``). The modules
follow the request: `collections` (which collections exist, what they say about
themselves and which of their fields are public), `crs` (the CRS offered and the
reprojection), `query` (the query string of an items request, checked, and the page
of feature ids it selects), `geojson` (the answer, written as JSON text) and `openapi`
(the API definition). The Flask blueprint in :mod:`gisportal.web.ogc` only turns HTTP
into calls to these.
"""
