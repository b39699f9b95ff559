"""``python -m shadowstream.cli`` is the ``shadow`` command."""

from shadowstream.cli.entry import main

main()
