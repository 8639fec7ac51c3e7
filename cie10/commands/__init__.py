"""CLI wiring: one module per subcommand, each exposing `register(subparsers)`."""
