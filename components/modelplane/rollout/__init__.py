"""Rollouts by diffing: the lock file, the diff of desired against deployed, the canary state machine.

- ``version``: what defines a model version, its digest and DNS-safe name.
- ``lock``: ``stacks/<stack>.lock.yaml``, the deployed-state record (read strictly, written atomically).
- ``diff``: object-level and model-level diff; ``DesiredModel``, a model as the stack wants it.
- ``state``: the state machine (``apply``, ``advance``, ``promote``, ``rollback``, ``pause``, ``resume``).
- ``compile``: a model's rollout state as the objects its deployment mode understands.
- ``gates``: gates as PromQL for a candidate, and their verdicts.
- ``prometheus``: gates judged on a live Prometheus (its HTTP API).
- ``policy``: the rollout policy of a stack or a model.
- ``cli``: ``modelplane rollout ...``.

Everything here is pure data in, data out (``prometheus`` and ``cli`` aside); nothing imports
Pulumi. The engine decides from desired models (``modelplane.build.desired_models`` makes them from
a stack) and never reads the whole stack. The modules are imported by name, not re-exported here:
``policy`` sits below the parts (``modelplane.model`` imports it), the rest above them.
"""
