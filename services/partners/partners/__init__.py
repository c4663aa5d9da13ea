"""The partners service: partner registry, purchase intake, offers and settlement."""
