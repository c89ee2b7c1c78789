"""Kong's database mode on PostgreSQL: the schema, the nodes that follow it, Kong's verbs.

See docs/cluster.md for what is consistent and when; each module's header for its rules.
"""
