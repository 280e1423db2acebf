"""Backtesting a journey change: replay a window of real, retained events through the engine
for the deployed version and a draft, side by side, and check the replay against the audit
store (`orchestrator backtest`, `orchestrator deploy --dry-run`, `POST /v1/journeys/backtest`).
"""
