"""The typed records of every topic: what producers write and consumers read."""
