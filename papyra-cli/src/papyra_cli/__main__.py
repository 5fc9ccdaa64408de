"""``python -m papyra_cli`` runs the ``papyra`` command."""

from papyra_cli.main import main

main()
