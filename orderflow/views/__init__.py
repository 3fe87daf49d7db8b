"""HTTP views served by every worker. Imported by the worker at start."""
