"""The only place that knows SQL or Kafka."""
