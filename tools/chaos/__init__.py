"""`make chaos`: a seeded fault-injection run (a nemesis, in the spirit of Jepsen) against a platform of its own.

    python -m tools.chaos --seed 1 --minutes 2            # three Kafka nodes, PostgreSQL, the three services
    python -m tools.chaos --seed 7 --seconds 45 --brokers 1 --keep

It starts a Fleet under .local/chaos/<seed>/ (deploy/local/fleet.py), sets up partners, members and an
activity (setup.py), sends a mixed load for the given time (load.py) while the nemesis kills and pauses
Kafka nodes, services and PostgreSQL on a schedule drawn from the seed (nemesis.py), heals everything,
waits until the platform is quiet, proves that every accepted request was applied exactly once and
nothing refused was applied (check.py, prove.py), prints a table and writes result.json (report.py).
Exit status: 0 passed, 1 a finding (the table says which), 2 the run itself could not be carried out.
"""
