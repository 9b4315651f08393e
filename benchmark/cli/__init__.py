"""The command line: ``python -m benchmark`` and its subcommands."""
