"""Small commands around the platform: the card feed that stands in for the bank's card system."""
