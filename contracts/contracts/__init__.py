"""What crosses service boundaries: the event envelope, events, topics and their schemas."""
