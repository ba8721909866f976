"""Alembic migrations of the alert store, run in code by :func:`escalation_risk.alerts.store.upgrade_store`.

One revision per schema version; each also records its number in ``schema_version`` so
that a release from before Alembic still sees, and refuses, a newer store.
"""
