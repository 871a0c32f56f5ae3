"""Integrations with orchestrators; each is an optional extra (`pip install leadgenius-etl[dagster]`)."""
