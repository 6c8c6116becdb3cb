"""``Model``: one served model as its own Pulumi component, for programs that compose their own platform."""

from __future__ import annotations

import pulumi

from modelplane.gpu_pool import GpuPoolArgs
from modelplane.model import ModelArgs, objects
from modelplane.resources._register import KubeObject, register_objects
from modelplane.runtimes import RuntimeSpec
from modelplane.types import DeploymentMode


class Model(pulumi.ComponentResource):
    """One model: its InferenceService (and storage ServiceAccount), placed on its pool.

    ``depends_on`` applies to every object the model registers: pass the release that
    installs KServe and, when the program creates it, the model's Namespace.

    ``ServingPlatform`` does not use this class for its catalog (one component per model
    doubles Pulumi's registrations); use it when a program serves a handful of models.
    """

    objects: dict[str, KubeObject]

    def __init__(
        self,
        name: str,
        args: ModelArgs,
        *,
        stack: str,
        namespace: str,
        mode: DeploymentMode,
        runtime: RuntimeSpec,
        pool: GpuPoolArgs | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("modelplane:index:Model", name, None, opts)
        rendered = objects(args, stack=stack, namespace=namespace, mode=mode, runtime=runtime, pool=pool)
        self.objects = register_objects(self, rendered, depends_on=list(depends_on or []))
        self.register_outputs({"name": args.name, "namespace": namespace, "version": args.version})
