"""The streaming runtime: Kafka-fed journey workers with customer state in Redis."""
