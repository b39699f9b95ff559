"""CLI command groups, one module per area (registered in shadow_cli.main)."""
