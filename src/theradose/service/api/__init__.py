"""API routers of the traceability service (one module per area)."""
