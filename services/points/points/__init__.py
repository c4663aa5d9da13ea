"""The points service: members, earn rules and the one ledger."""
