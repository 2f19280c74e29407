"""HTTP endpoints: health, Prometheus metrics, client autoconfiguration."""
