"""Cross-node state in a real Redis server: shared rate-limit counters (redis_limits)."""
