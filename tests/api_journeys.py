"""A small journey for API tests: an `api.ordered` event sends one in-app note."""

from __future__ import annotations

from typing import Any

JOURNEY = "api-thanks"

JOURNEY_YAML = """\
id: api-thanks
name: API test journey
trigger: {event: api.ordered}
steps:
  - id: thank
    send: {channel: in_app, template: api_note}
"""

TEMPLATES = {"api_note": 'in_app: {title: "Thanks", body: "{{ marker }}"}'}


def journey_file(marker: str = "v1") -> dict[str, Any]:
    """The body of `POST /v1/journeys` for the journey, its note saying `marker`."""
    return {
        "yaml": JOURNEY_YAML,
        "path": "api-thanks.yaml",
        "templates": {"api_note": TEMPLATES["api_note"].replace("{{ marker }}", marker)},
    }
