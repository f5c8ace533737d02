"""The command line: a thin face over the services (``main``) and account commands.
"""
