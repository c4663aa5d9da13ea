"""`make bench`: the platform's speed measured against this machine's own limits (issue 6).

Each scenario starts its own service processes on their own databases and topic prefix, drives
them through the real paths (Kafka topics, signed partner HTTP, member HTTP), and reports one
figure per row, beside the limit measured in the same run where one applies. See README.md,
"Benchmarks", for what each figure means.
"""
