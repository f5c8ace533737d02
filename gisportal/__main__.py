"""``python -m gisportal`` runs the same command as the ``gisportal`` script."""

from gisportal.cli.main import main

main()
