"""Developer tools: local infrastructure, namespaces, the demo."""
