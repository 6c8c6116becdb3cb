"""A platform team's own Pulumi program that uses some of modelplane's parts next to its own resources.

The team already runs Prometheus and has no use for the model mesh or GPU pools, so instead of
the whole ``ServingPlatform`` it takes the control plane, the tenants, the runtimes and the
model catalog of its stack, adds one model of its own as a ``Model`` component, and places
everything beside a Namespace it manages itself. Every name comes from the public API, typed
for mypy and IDEs; ``import modelplane`` loads no Pulumi until a component is used.

Use it as the ``__main__.py`` of a Pulumi project (``runtime: python``) whose environment has
modelplane installed; docs/architecture.md explains how the pieces fit.
"""

import pulumi
import pulumi_kubernetes as k8s

from modelplane import (
    ControlPlane,
    Model,
    ModelArgs,
    ModelCatalog,
    RuntimeCatalog,
    ServingPlatformArgs,
    Tenants,
    build,
    catalog_dir,
    load_catalog,
)

# The team's own resource, outside modelplane: the namespace of its feature store.
feature_store = k8s.core.v1.Namespace("feature-store", metadata={"name": "feature-store"})

# What the team's scikit-learn models share.
sklearn = {
    "tenant": "search",
    "runtime": "sklearn",
    "format": {"name": "sklearn", "version": "1"},
    "storage": {"uri": "gs://kfserving-examples/models/sklearn/1.0/model"},
}

# The stack could come from a file (modelplane.load_stack); here it is written in Python.
stack = ServingPlatformArgs.model_validate(
    {
        "stack": {"name": pulumi.get_stack(), "tier": "dev"},
        "monitoring": {"enabled": False},
        "tenants": [{"name": "search"}],
        "models": [{**sklearn, "name": "query-classifier", "version": "v3", "scaling": {"maxReplicas": 3}}],
    }
)
rendered = build(stack)  # checks the cross-field rules, then renders every object and release

control_plane = ControlPlane("search-control-plane", rendered.charts, protect_crds=False)
needs = control_plane.group_dependencies(rendered.charts)
namespaces = dict(control_plane.namespaces)
tenants = Tenants("search-tenants", rendered.part("tenant"), dependencies=needs, namespaces=namespaces)
runtimes = RuntimeCatalog(
    "search-runtimes", rendered.part("runtime"), dependencies=needs, namespaces=namespaces
)
models = ModelCatalog("search-models", rendered.part("model"), dependencies=needs, namespaces=namespaces)

# One more model, placed by the program itself: it reads the feature store, so it lives there.
ranker = ModelArgs.model_validate({**sklearn, "name": "ranker", "version": "v1"})
Model(
    "ranker",
    ranker,
    stack=stack.stack.name,
    namespace="feature-store",
    mode="standard",
    runtime=load_catalog(catalog_dir())[ranker.runtime],
    depends_on=[feature_store, *needs["serving.kserve.io"], *runtimes.objects.values()],
)

pulumi.export("releases", sorted(control_plane.releases))
pulumi.export("models", sorted(models.objects))
pulumi.export("tenants", sorted(tenants.namespaces()))
