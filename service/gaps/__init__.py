"""Reintegration gap maps: aggregation in the database, disclosure control, snapshots, maps and exports."""
