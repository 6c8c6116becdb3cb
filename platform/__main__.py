"""The Pulumi program: load this Pulumi stack's stack file and build its serving platform."""

from pathlib import Path

import pulumi

from modelplane import LockError, ProblemError, ServingPlatform, StackError, load_lock, load_stack
from modelplane.image_lock import load_image_lock
from modelplane.stack_yaml import problem_line

config = pulumi.Config("modelplane")
stack_name = pulumi.get_stack()
project_root = Path(__file__).resolve().parent.parent
stack_file = Path(config.get("stackFile") or project_root / "stacks" / f"{stack_name}.yaml")

try:
    args = load_stack(stack_file)
except StackError as err:
    raise pulumi.RunError("invalid stack file:\n" + "\n".join(err.problems)) from None
if args.stack.name != stack_name:
    raise pulumi.RunError(
        f"{stack_file}: stack.name: is {args.stack.name!r} but the Pulumi stack is {stack_name!r}; "
        "a stack file must not be applied to another environment"
    )

try:
    # The deployed-state record: rollouts render at the traffic split it holds.
    lock = load_lock(stack_file, stack=stack_name)
    # The digests `modelplane images pin` resolved: images render pinned, as in the GitOps render.
    images = load_image_lock(stack_file, stack=stack_name)
except LockError as err:
    raise pulumi.RunError(f"invalid lock file:\n{err}") from None

# Upstream releases someone else installs (another team, a test control plane): not registered.
external = config.get_object("externalReleases") or []
if not isinstance(external, list) or not all(isinstance(r, str) for r in external):
    raise pulumi.RunError(f"modelplane:externalReleases: must be a list of release names (got {external!r})")
try:
    platform = ServingPlatform(
        stack_name, args, lock=lock, images=images, external_releases=frozenset(external)
    )
except ValueError as err:
    raise pulumi.RunError(f"modelplane:externalReleases: {err}") from None
except ProblemError as err:
    raise pulumi.RunError(
        "\n".join(problem_line(str(stack_file), p.path, p.message) for p in err.problems)
    ) from None
pulumi.export("stack", platform.outputs["stack"])
pulumi.export("tier", platform.outputs["tier"])
pulumi.export("models", platform.outputs["models"])
pulumi.export("charts", platform.outputs["charts"])
