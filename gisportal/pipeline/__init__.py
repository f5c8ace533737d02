"""From an uploaded file to a validated layer: read → normalise → validation → repair.
Knows no store; imports only ``base``.
"""
