"""The store: sessions, the security audit trail, connection and event metrics, webhook
deliveries, the node registry and pattern lineage, in SQLite (default) or PostgreSQL.

Nothing here imports SQLAlchemy at module import time except `schema`, `database` and the
query modules, which the running store loads in the background after the gateway serves
(`service.Store`), so a cold start does not pay for them.
"""
