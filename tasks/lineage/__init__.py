"""Lineage: from a document to every model that trained on it, and from a model to its data.

Read from what the stages already publish (their records, the ingest index and manifest, the
encode index, the sample order): no second bookkeeping that could drift from the artifacts.
"""
