"""Figures from the audit store: journey statistics, experiments, surveys, cycle times."""
