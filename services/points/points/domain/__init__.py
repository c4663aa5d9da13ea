"""The ledger's rules, pure Python: no Kafka, HTTP or SQL here."""
