"""``python -m shadowstream.cli`` is the ``shadow`` command."""

from shadowstream.cli.main import main

main()
