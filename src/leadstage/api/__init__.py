"""HTTP entry point: the REST API under /api/v1 (FastAPI)."""
