"""Operator actions (deploy, pause, archive, publish...) shared by the CLI and the API."""
