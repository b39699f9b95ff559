"""``python -m shadow_cli`` is the ``shadow`` command."""

from shadow_cli.main import main

main()
