"""Live view: a camera's one ingest, fanned out to any number of viewers at the live edge."""
