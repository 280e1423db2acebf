"""Channel connectors: deliver outbound messages and turn receipts and replies into events."""
