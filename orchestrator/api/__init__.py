"""The HTTP front door (`orchestrator api`): ingest, journeys, customers, keys, probes.

Handlers are thin over `orchestrator.control`; `access.ACCESS` says which roles each route
admits.
"""
