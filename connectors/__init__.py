"""Channel connectors: deliver outbound messages and turn receipts into events.

One module per channel (`mail`, `sms` for sms and whatsapp, `webhook`, `push`, `inapp`)
behind the `Connector` Protocol; `runner` feeds each channel from `outbound` and its retry
schedule; `worker` runs the channels of one `orchestrator connectors` process. `bounces` is
the `orchestrator bounces` process: the SMTP receiver of DSNs mailed back to the VERP
addresses `verp` makes, read by `dsn`. See docs/channels.md.
"""

from connectors.base import Connector, Delivered, OutboundMessage, Outcome, Permanent, Retry
from connectors.worker import CHANNELS, ConnectorWorker, configured_channels

__all__ = [
    "CHANNELS",
    "Connector",
    "ConnectorWorker",
    "Delivered",
    "OutboundMessage",
    "Outcome",
    "Permanent",
    "Retry",
    "configured_channels",
]
