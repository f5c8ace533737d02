"""The ground floor: errors, text, settings, packaged resources and seeds, CRS,
layer models, findings. Imports nothing of gisportal outside ``base``.
"""
