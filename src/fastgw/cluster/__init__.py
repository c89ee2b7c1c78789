"""Cross-node state: shared rate-limit counters in Redis (redis_limits); the configuration
in PostgreSQL, Kong's database mode (pg)."""
