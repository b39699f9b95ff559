"""The demo: a synthetic production service, its champion and three challengers."""
