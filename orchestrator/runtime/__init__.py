"""The journey worker: Kafka-fed batches applied to customer state in Redis, and its timers."""
