"""Shared plumbing of the loyalty services. No business rules live here."""
