"""CLI command groups, one module per area (registered in shadowstream.cli.main)."""
