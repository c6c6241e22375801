"""The ``istio-federation`` launcher: one console script, a subcommand per component."""
