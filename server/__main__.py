"""``python -m server`` runs the ``preloop`` CLI."""

from server.cli.main import main

main()
