"""The engine: the run plan, units, scoring, aggregation, outputs, and the local, process-pool and Ray engines."""
