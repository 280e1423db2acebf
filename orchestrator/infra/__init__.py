"""Infrastructure every process shares: settings, names, clock, Kafka and Redis clients."""
