"""Flask-free use cases that both faces (web and CLI) and the jobs call: ingest, the
one publish path (workflow), decisions, look-up, search, commune updates, the demo.
"""
