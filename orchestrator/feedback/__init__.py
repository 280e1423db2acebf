"""Feedback routing: free text from `events` to the team that owns what it is about.

`items` says which events carry feedback and builds the team records and notifications;
`router` is `orchestrator feedback` (exactly once, in Kafka transactions); `reroute` routes
a past range again after a rules change; `metrics` serves /health and /metrics.
"""
