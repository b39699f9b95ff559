"""The ``shadow`` command: run agents, the demo, migrations, reports and gates."""
