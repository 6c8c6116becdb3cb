"""Rollouts by diffing: the lock file, the diff of desired against deployed, the canary state machine.

Everything here is pure data in, data out; nothing imports Pulumi.
"""
