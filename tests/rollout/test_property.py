"""Property: whatever the edits and commands, traffic goes only to the stable version or the
candidate, and the shares always sum to 100, in the lock and in the rendered objects."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.build import BuildContext, _models, desired_models
from modelplane.errors import RolloutError
from modelplane.kube import LABEL_VERSION
from modelplane.rollout import state
from modelplane.rollout.compile import ANNOTATION_CANDIDATE_OF, AUTOSCALING_FIELDS, rendered_traffic
from modelplane.rollout.diff import model_decisions
from modelplane.rollout.lock import Lock, ModelRecord
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from tests.rollout.builders import KEYS, STACK, desired, load, stack_data

MODES = {"kn": "knative", "std": "standard", "mesh": "modelmesh"}
SPLITTABLE = ["kn", "std"]
CATALOG = load_catalog(catalog_dir())
SETTLED = ("steady", "in-place", "continue", "held")

model_names = st.sampled_from(sorted(MODES))
commands = st.tuples(
    st.sampled_from(["advance", "advance", "promote", "rollback", "pause", "resume"]), model_names
)
operations = st.one_of(
    st.tuples(st.just("release"), model_names),
    commands,
    commands,
    st.tuples(st.just("bump"), model_names),
    st.tuples(st.just("revert"), model_names),
    st.tuples(st.just("scale"), st.sampled_from(SPLITTABLE), st.integers(1, 4)),
    st.tuples(
        st.just("strategy"), st.sampled_from(SPLITTABLE), st.sampled_from(["stack", "ab", "direct", "short"])
    ),
    st.tuples(st.just("apply")),
)


class World:
    """A stack being edited, its lock, and a clock."""

    def __init__(self) -> None:
        self.data = stack_data(
            rollout={"strategy": "canary", "steps": [10, 25, 50, 100], "stepInterval": "10m"}
        )
        self.minute = 0
        self.serial = {name: 1 for name in MODES}
        self.previous: dict[str, dict[str, Any]] = {}
        self.lock: Lock = state.apply(None, desired(self.data), stack=STACK, now=self.now())

    def now(self) -> str:
        self.minute += 11
        return f"2026-03-0{1 + self.minute // 1440}T{self.minute // 60 % 24:02d}:{self.minute % 60:02d}:00Z"

    def args(self) -> ServingPlatformArgs:
        return load(self.data)

    def model(self, name: str) -> dict[str, Any]:
        model: dict[str, Any] = next(m for m in self.data["models"] if m["name"] == name)
        return model

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "release":  # a merged change: the stack moves and CI applies it
            self.run(("bump", op[1]))
            self.run(("apply",))
        elif kind == "bump":
            name = op[1]
            model = self.model(name)
            self.previous[name] = copy.deepcopy(model)
            self.serial[name] += 1
            model["version"] = f"v{self.serial[name]}"
            model["storage"]["uri"] = f"s3://models/{name}/v{self.serial[name]}"
        elif kind == "revert":
            if op[1] in self.previous:
                index = self.data["models"].index(self.model(op[1]))
                self.data["models"][index] = self.previous.pop(op[1])
        elif kind == "scale":
            self.model(op[1])["scaling"] = {"minReplicas": op[2], "maxReplicas": 6}
        elif kind == "strategy":
            overrides = {
                "stack": None,
                "ab": {"strategy": "ab", "abSplit": 30},
                "direct": {"strategy": "direct"},
                "short": {"steps": [50, 100]},
            }
            self.model(op[1])["rollout"] = overrides[op[2]]
            if overrides[op[2]] is None:
                del self.model(op[1])["rollout"]
        elif kind == "apply":
            self.lock = state.apply(self.lock, desired(self.data), stack=STACK, now=self.now())
        else:
            self.command(kind, KEYS[MODES[op[1]]])

    def command(self, kind: str, key: str) -> None:
        decisions = {d.key: d for d in model_decisions(desired(self.data), self.lock)}
        if decisions[key].kind not in SETTLED:
            return  # the CLI refuses commands on a stale lock
        record = self.lock.models[key]
        actions = {
            "advance": state.advance,
            "promote": state.promote,
            "rollback": state.rollback,
            "pause": state.pause,
            "resume": state.resume,
        }
        try:
            updated = actions[kind](record, key, now=self.now())
        except RolloutError:
            return
        self.lock = self.lock.model_copy(update={"models": {**self.lock.models, key: updated}})


def check_record(record: ModelRecord) -> None:
    split = state.traffic(record)
    allowed = {record.stable.digest} | ({record.rollout.candidate.digest} if record.rollout else set())
    assert {v.digest for v, _ in split} <= allowed
    assert sum(p for _, p in split) == 100
    assert all(0 < p <= 100 for _, p in split)


def check_render(args: ServingPlatformArgs, lock: Lock) -> None:
    records = state.effective_records(desired_models(args), lock)
    ctx = BuildContext(catalog=CATALOG, modes=tuple(args.mode(m) for m in args.models), rollouts=records)
    objects = _models(args, ctx)
    stable = {k: r.stable.version for k, r in records.items()}
    routed = rendered_traffic(objects, stable)
    for key, record in records.items():
        check_record(record)
        allowed = {record.stable.version} | ({record.rollout.candidate.version} if record.rollout else set())
        assert set(routed[key]) <= allowed, (key, routed[key], allowed)
        assert sum(routed[key].values()) == 100
        expected: dict[str, int] = {}
        for version, share in state.traffic(record):
            expected[version.version] = expected.get(version.version, 0) + share
        assert routed[key] == expected
    for obj in objects:
        if obj["kind"] != "InferenceService":
            continue
        for canary in obj["spec"].get("canary", []):
            assert not set(AUTOSCALING_FIELDS) & set(canary["predictor"])
            assert canary["predictor"]["name"] != obj["spec"]["predictor"]["name"]
            assert canary["predictor"]["labels"][LABEL_VERSION] in {
                r.rollout.candidate.version for r in records.values() if r.rollout is not None
            }
        if ANNOTATION_CANDIDATE_OF in obj["metadata"].get("annotations", {}):
            owner = records[
                f"{obj['metadata']['namespace']}/{obj['metadata']['annotations'][ANNOTATION_CANDIDATE_OF]}"
            ]
            assert owner.rollout is not None and owner.rollout.state != "rolled-back"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=4, max_size=24))
def test_traffic_only_reaches_stable_or_candidate_and_sums_to_100(ops: list[tuple[Any, ...]]) -> None:
    world = World()
    for op in ops:
        world.run(op)
        for record in world.lock.models.values():
            check_record(record)
        check_render(world.args(), world.lock)
