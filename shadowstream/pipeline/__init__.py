"""Assemble and run the whole system: one Faust app per process (a role or all of
them), the embedded broker, agents as subprocesses."""
