"""What is made from stored versions: vector tiles, export packages, the OGC API,
comparisons, the public allow-list (privacy), display geometry, map assets and the
validation report page. Imports ``base``, ``pipeline`` and ``store``.
"""
