"""Figures about journeys, kept current from the audit store's records (docs/measurement.md)."""
