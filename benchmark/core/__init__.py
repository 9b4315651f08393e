"""The bottom layer: the plugin registry, the one-line errors, atomic writes and seeds."""
