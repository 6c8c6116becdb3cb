"""The cross-field rules of a stack: values checked against each other, every problem at once.

Field types and section models have already checked each value where it is declared; these
rules check what only the whole stack can tell: references exist (tenants, runtimes, GPU
pools), names are unique, a model's runtime serves its format and protocol, a deployment mode
can carry out the scaling and rollout a model asks for, and each part's own rules (GPU pools,
quotas, the mesh) hold for the parts that use it. The parts own their rules as narrow
functions over their own args and a path; this module walks the stack and calls them.

``problems`` returns the findings; ``check`` raises them. ``version_problems`` checks what a
rollout adds: the stable version a lock keeps serving, with the stack's current in-place
fields (its scaling, say), must pass the same rules, or the render under the lock fails. The stack loader runs the rules after
field validation, over every model and tenant whose own fields are valid (``Omitted`` names
the others), so one run reports field errors, dangling references and bad combinations
together. ``modelplane.build`` runs ``check`` too, so a stack built in Python cannot skip them.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from modelplane import credentials, gpu_pool, graph, llm, model_mesh, model_rules, scaling
from modelplane.base import Problem
from modelplane.errors import ProblemError
from modelplane.external_runtime import ExternalRuntimeArgs, with_external
from modelplane.kube import model_key
from modelplane.model import ModelArgs, deployment_problems, derived_name_problems
from modelplane.rollout.lock import ModelRecord
from modelplane.rollout.policy import mode_problems
from modelplane.rollout.version import with_spec
from modelplane.runtimes import RuntimeSpec
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.tenant import gpu_quota_problems
from modelplane.types import DeploymentMode, FieldPath

Catalog = Mapping[str, RuntimeSpec]
"""The runtime catalog by name (``modelplane.runtimes.load_catalog``)."""


@dataclass(frozen=True)
class Omitted:
    """Models and tenants left out of a stack because their own fields are invalid.

    The loader reports their field errors and runs the rules over the rest: problems keep the
    file's indexes, and a reference to an omitted tenant is not reported as dangling.
    """

    models: frozenset[int] = frozenset()
    """File indexes of the omitted models."""
    tenants: frozenset[int] = frozenset()
    """File indexes of the omitted tenants."""
    tenant_names: frozenset[str] = frozenset()
    """Names the omitted tenants declare."""


def _file_index(kept: int, omitted: frozenset[int]) -> int:
    """The index in the file of the ``kept``-th item that was not omitted."""
    index = kept
    for gap in sorted(omitted):
        if gap > index:
            break
        index += 1
    return index


def gpu_scale_to_zero_risks(stack: ServingPlatformArgs, omitted: Omitted | None = None) -> list[Problem]:
    """GPU models whose cold start in Knative mode would fail before their node is ready.

    A problem outside the dev tier (``problems``), a warning in it (``modelplane.build``).
    """
    omitted = omitted or Omitted()
    result: list[Problem] = []
    for i, model in enumerate(stack.models):
        reason = scaling.scale_to_zero_risk(
            stack.mode(model),
            model.scaling,
            stack.pool(model.resources.pool),
            grace_seconds=stack.autoscaler.grace_seconds,
            scale_to_zero=stack.autoscaler.scale_to_zero_enabled,
        )
        if reason:
            result.append(
                Problem(("models", _file_index(i, omitted.models), "scaling", "minReplicas"), reason, 0)
            )
    return result


class _Rules:
    """One walk over a stack; methods are the rules by concern, in the order problems are reported."""

    def __init__(self, stack: ServingPlatformArgs, catalog: Catalog, omitted: Omitted) -> None:
        self.stack = stack
        self.catalog = with_external(catalog, stack.external_runtimes)
        self.catalog_names = frozenset(catalog)
        self.omitted = omitted
        self.found: list[Problem] = []
        self.tenants = {t.name: t for t in stack.tenants}
        self.seen_models: dict[tuple[str, str], int] = {}

    def add(self, path: FieldPath, message: str, value: object = None) -> None:
        self.found.append(Problem(path, message, value))

    def model_index(self, i: int) -> int:
        return _file_index(i, self.omitted.models)

    def tenant_index(self, i: int) -> int:
        return _file_index(i, self.omitted.tenants)

    def run(self) -> list[Problem]:
        self.tenant_names()
        self.external_runtimes()
        for i, model in enumerate(self.stack.models):
            index = self.model_index(i)
            path: FieldPath = ("models", index)
            mode = self.stack.mode(model)
            self.model_reference(path, index, model)
            self.runtime_fit(path, model, mode)
            self.found += scaling.problems(
                mode, model.scaling, runtime=model.runtime, path=(*path, "scaling")
            )
            self.mesh_mode(path, model, mode)
            self.rollout(path, model, mode)
            self.derived_names(path, model, mode)
            self.found += [p.under(path) for p in deployment_problems(model, mode=mode)]
            self.model_settings(path, model, mode)
        self.graphs()
        self.llms()
        self.mesh()
        self.allowed_runtimes()
        if self.stack.stack.tier != "dev":
            self.found += gpu_scale_to_zero_risks(self.stack, self.omitted)
        self.gpu_pools()
        self.mesh_models()
        self.credentials()
        return self.found

    def credentials(self) -> None:
        """Every string of the stack, whatever field holds it: none may be a credential itself."""
        indexes = {"models": self.model_index, "tenants": self.tenant_index}
        for path, kind in credentials.scan(self.stack):
            if len(path) >= 2 and path[0] in indexes and isinstance(path[1], int):
                path = (path[0], indexes[str(path[0])](path[1]), *path[2:])
            # The value is never shown: it is the secret.
            self.add(
                path,
                f"looks like {kind}; a stack carries credentials by reference only (the name of a "
                "Secret, an ExternalSecret or a Pulumi secret), never the value",
            )

    def tenant_names(self) -> None:
        """Tenant names are unique, and so are their namespaces."""
        seen_names: dict[str, int] = {}
        seen_namespaces: dict[str, int] = {}
        for i, tenant in enumerate(self.stack.tenants):
            index = self.tenant_index(i)
            if tenant.name in seen_names:
                self.add(
                    ("tenants", index, "name"),
                    f"duplicate tenant name (also tenants[{seen_names[tenant.name]}])",
                    tenant.name,
                )
                continue
            seen_names[tenant.name] = index
            namespace = tenant.namespace_name
            if namespace in seen_namespaces:
                self.add(
                    ("tenants", index, "namespace" if tenant.namespace else "name"),
                    f"tenant {tenant.name!r} would share namespace {namespace!r} with "
                    f"tenants[{seen_namespaces[namespace]}]; give it its own namespace",
                    namespace,
                )
            else:
                seen_namespaces[namespace] = index

    def external_runtimes(self) -> None:
        """Each external runtime has a name of its own: not a catalog runtime's, not another's."""
        seen: set[str] = set()
        for i, runtime in enumerate(self.stack.external_runtimes):
            if runtime.name in self.catalog_names or runtime.name in seen:
                self.add(
                    ("externalRuntimes", i, "name"),
                    "is already a runtime name (catalog: "
                    + ", ".join(sorted(self.catalog_names))
                    + "); give it "
                    "another, or use that runtime",
                    runtime.name,
                )
            seen.add(runtime.name)
            if runtime.kind == "ClusterServingRuntime":
                self.external_priority(i, runtime)

    def external_priority(self, i: int, runtime: ExternalRuntimeArgs) -> None:
        """The cluster's runtime and a catalog runtime the stack renders never share a format's priority.

        KServe's ClusterServingRuntime webhook refuses a runtime when another that serves a common
        protocol auto-selects the same format (name and version) at the same priority (kserve
        v0.20.0 pkg/webhook/admission/servingruntime/servingruntime_webhook.go:182-208); which of
        the two is refused depends only on which is applied last.
        """
        used = sorted(
            {
                m.runtime
                for m in self.stack.models
                if m.runtime in self.catalog_names
                and m.runtime != "custom"
                and self.stack.mode(m) != "modelmesh"
            }
        )
        for j, theirs in enumerate(runtime.formats):
            if not theirs.auto_select or theirs.priority is None:
                continue
            for name in used:
                ours = self.catalog[name]
                if not set(ours.protocols) & set(runtime.protocols):
                    continue
                clash = any(
                    f.auto_select
                    and f.priority == theirs.priority
                    and f.name.casefold() == theirs.name.casefold()
                    and f.version == theirs.version
                    for f in ours.formats
                )
                if clash:
                    label = theirs.name + (f" {theirs.version}" if theirs.version else "")
                    self.add(
                        ("externalRuntimes", i, "formats", j, "priority"),
                        f"catalog runtime modelplane-{name} auto-selects {label} at the same priority, and KServe refuses two "
                        "ClusterServingRuntimes of one priority for a format; give the cluster's "
                        "runtime another priority, or autoSelect false",
                        theirs.priority,
                    )

    def model_settings(self, path: FieldPath, model: ModelArgs, mode: DeploymentMode) -> None:
        """The model's settings against its mode, runtime, pool, rollout strategy and Kubernetes version."""
        runtime = self.catalog.get(model.runtime)
        if runtime is None:
            return
        try:
            strategy = self.stack.policy(model).strategy
        except ValueError:
            strategy = self.stack.rollout.strategy
        keda = mode == "standard" and (model.scaling.metric or "cpu") not in scaling.HPA_METRICS
        self.found += model_rules.problems(
            model,
            mode=mode,
            runtime=runtime,
            pool=self.stack.pool(model.resources.pool),
            keda=keda,
            strategy=strategy,
            kubernetes=self.stack.versions.kubernetes,
            image_volume=self.stack.control_plane.image_volume,
            pod_security=self.pod_security(model),
            path=path,
        )

    def pod_security(self, model: ModelArgs) -> str | None:
        """The Pod Security level the model's namespace enforces; None when its tenant is not known."""
        tenant = self.tenants.get(model.tenant)
        return None if tenant is None else tenant.pod_security

    def model_reference(self, path: FieldPath, index: int, model: ModelArgs) -> None:
        """A model names a declared tenant and is the only one of its name in that namespace."""
        tenant = self.tenants.get(model.tenant)
        if tenant is None:
            if model.tenant not in self.omitted.tenant_names:
                known = ", ".join(sorted(self.tenants)) or "none declared"
                self.add((*path, "tenant"), f"unknown tenant (tenants: {known})", model.tenant)
            return
        key = (tenant.namespace_name, model.name)
        if key in self.seen_models:
            self.add(
                (*path, "name"),
                f"duplicate model name in namespace {key[0]!r} (also models[{self.seen_models[key]}])",
                model.name,
            )
        else:
            self.seen_models[key] = index

    def runtime_fit(self, path: FieldPath, model: ModelArgs, mode: DeploymentMode) -> None:
        """The runtime exists and serves the model's format and protocol (in the mesh, too) and GPUs."""
        catalog = self.catalog
        runtime = catalog.get(model.runtime)
        if runtime is None:
            self.add(
                (*path, "runtime"), f"unknown runtime (catalog: {', '.join(sorted(catalog))})", model.runtime
            )
        elif model.runtime != "custom":
            fmt = model.model_format
            shown = model.format_key
            if mode == "modelmesh":
                if runtime.mesh is None:
                    self.add(
                        (*path, "runtime"),
                        "runtime cannot serve in the model mesh (mesh runtimes: "
                        + ", ".join(sorted(n for n, r in catalog.items() if r.mesh))
                        + ")",
                        model.runtime,
                    )
                elif not runtime.mesh_serves(fmt.name, fmt.version):
                    self.add(
                        (*path, "format"),
                        f"runtime {model.runtime!r} does not serve format {shown!r} in the "
                        f"mesh (it serves {', '.join(sorted({f.name for f in runtime.mesh.formats}))})",
                        shown,
                    )
            elif not runtime.serves(fmt.name, fmt.version):
                able = sorted(
                    n for n, r in catalog.items() if n != "custom" and r.serves(fmt.name, fmt.version)
                )
                instead = (
                    f"runtimes that serve it: {', '.join(able)}" if able else "no catalog runtime serves it"
                )
                self.add(
                    (*path, "format"),
                    f"runtime {model.runtime!r} does not serve format {shown!r}; it serves "
                    f"{', '.join(runtime.format_names())} ({instead})",
                    shown,
                )
            wanted = model.protocol.kserve_value
            if mode != "modelmesh" and runtime.protocols and wanted not in runtime.protocols:
                speakers = sorted(n for n, r in catalog.items() if n != "custom" and wanted in r.protocols)
                self.add(
                    (*path, "protocol"),
                    f"runtime {model.runtime!r} does not speak {wanted!r}; it speaks "
                    f"{', '.join(runtime.protocols)} (runtimes that speak {wanted}: "
                    f"{', '.join(speakers) or 'none'})",
                    wanted,
                )
        if runtime is not None and model.resources.gpu and not runtime.gpu_capable:
            self.add(
                (*path, "resources", "gpu"), f"runtime {model.runtime!r} cannot use GPUs", model.resources.gpu
            )

    def mesh_mode(self, path: FieldPath, model: ModelArgs, mode: DeploymentMode) -> None:
        """A mesh model needs the mesh and has no GPUs of its own (its settings: ``model_rules``)."""
        if mode != "modelmesh":
            return
        if not self.stack.model_mesh.enabled:
            self.add(
                (*path, "deploymentMode"),
                "modelmesh mode needs modelMesh.enabled: true; enable the mesh, "
                "or use deploymentMode knative or standard",
                mode,
            )
        if model.resources.gpu:
            self.add(
                (*path, "resources", "gpu"),
                "modelmesh mode places models in shared runtime pods; "
                "GPUs belong to the mesh runtime, not the model (use knative or standard mode)",
                model.resources.gpu,
            )

    def rollout(self, path: FieldPath, model: ModelArgs, mode: DeploymentMode) -> None:
        """The model's rollout policy is one its mode can carry out."""
        override = model.rollout
        strategy = override.strategy if override and override.strategy else self.stack.rollout.strategy
        if mode == "modelmesh" and strategy == "ab":
            self.add(
                (*path, "rollout", "strategy"),
                "modelmesh mode cannot split traffic, so it cannot run an A/B "
                "test; use strategy canary (load beside, then switch) or direct",
                strategy,
            )
        try:
            policy = self.stack.policy(model)
        except ValueError as err:
            self.add((*path, "rollout"), f"the model's rollout override is invalid with the stack's: {err}")
            return
        inherited = override is None or (override.strategy is None and override.shadow is None)
        for name, message, value in mode_problems(
            policy,
            mode,
            gateway_api=self.stack.control_plane.ingress.gateway_api,
            inherited=inherited,
            kserve=self.stack.versions.kserve,
        ):
            self.add((*path, "rollout", name), message, value)

    def derived_names(self, path: FieldPath, model: ModelArgs, mode: DeploymentMode) -> None:
        """The names KServe and Knative derive from the model fit their limits in its namespace."""
        tenant = self.tenants.get(model.tenant)
        if tenant is None:
            return
        try:
            canary = self.stack.policy(model).strategy != "direct"
        except ValueError:
            canary = True  # reported by ``rollout``; assume the longest names
        self.found += [
            p.under(path)
            for p in derived_name_problems(model, namespace=tenant.namespace_name, mode=mode, canary=canary)
        ]

    def known_tenant(self, path: FieldPath, tenant: str) -> bool:
        """Whether a section's item names a declared tenant; an unknown one is reported (not an omitted one)."""
        if tenant in self.tenants:
            return True
        if tenant not in self.omitted.tenant_names:
            known = ", ".join(sorted(self.tenants)) or "none declared"
            self.add((*path, "tenant"), f"unknown tenant (tenants: {known})", tenant)
        return False

    def graphs(self) -> None:
        """Each graph's tenant exists, its steps call models of that tenant, its name is its own, its mode fits."""
        served: dict[str, set[str]] = {}
        for model in self.stack.models:
            served.setdefault(model.tenant, set()).add(model.name)
        seen: dict[tuple[str, str], int] = {}
        for i, item in enumerate(self.stack.graphs):
            path: FieldPath = ("graphs", i)
            if not self.known_tenant(path, item.tenant):
                continue
            key = (item.tenant, item.name)
            if key in seen:
                self.add(
                    (*path, "name"),
                    f"duplicate graph name in tenant {item.tenant!r} (also graphs[{seen[key]}])",
                    item.name,
                )
            elif item.name in served.get(item.tenant, set()):
                self.add(
                    (*path, "name"),
                    f"tenant {item.tenant!r} has a model of that name; a graph and a model of a namespace share its "
                    "hostnames, so give the graph its own name",
                    item.name,
                )
            seen.setdefault(key, i)
            self.found += graph.model_reference_problems(item, served.get(item.tenant, set()), path=path)
            self.found += graph.mode_problems(item, self.stack.graph_mode(item), path=path)

    def llms(self) -> None:
        """Each LLM service's tenant and pool exist, its name is its own, multi-node services have LeaderWorkerSet."""
        seen: dict[tuple[str, str], int] = {}
        for i, item in enumerate(self.stack.llms):
            path: FieldPath = ("llms", i)
            self.known_tenant(path, item.tenant)
            key = (item.tenant, item.name)
            if key in seen:
                self.add(
                    (*path, "name"),
                    f"duplicate LLM service name in tenant {item.tenant!r} (also llms[{seen[key]}])",
                    item.name,
                )
            seen.setdefault(key, i)
            pool = self.stack.pool(item.resources.pool)
            if item.resources.pool is not None and pool is None:
                known = ", ".join(sorted(p.name for p in self.stack.gpu_pools)) or "none declared"
                self.add(
                    (*path, "resources", "pool"), f"unknown GPU pool (gpuPools: {known})", item.resources.pool
                )
                continue
            self.found += llm.placement_problems(item, pool, path=path)
            # KServe's LLMInferenceService controller runs oci:// as the same modelcar
            # (v0.20.0 pkg/controller/v1alpha2/llmisvc/workload_storage.go:154-166, 228-233).
            tenant = self.tenants.get(item.tenant)
            self.found += model_rules.oci_problems(
                [((*path, "model", "uri"), item.model.uri)],
                kubernetes=self.stack.versions.kubernetes,
                image_volume=self.stack.control_plane.image_volume,
                pod_security=None if tenant is None else tenant.pod_security,
            )
            multi = item.multi_node or (
                item.prefill is not None
                and item.prefill.parallelism is not None
                and item.prefill.parallelism.pods > 1
            )
            if multi and not self.stack.control_plane.leader_worker_set:
                self.add(
                    (*path, "parallelism"),
                    "spans several pods per replica, which KServe runs as a LeaderWorkerSet "
                    "(llmisvc workload_multi_node.go); install LeaderWorkerSet (KServe pins v0.8.0) and set "
                    "controlPlane.leaderWorkerSet: true, or keep a replica on one pod",
                    item.pods_per_replica,
                )
            if pool is not None:
                self.found += gpu_pool.gpu_request_problems(
                    (*path, "resources"),
                    gpu=item.resources.gpu,
                    mig_profile=item.resources.mig_profile,
                    exclusive_gpu_memory=False,
                    pool=pool,
                )

    def mesh(self) -> None:
        """The mesh's own rules: etcd for the tier, mesh runtimes against the catalog and pools."""
        self.found += model_mesh.problems(
            self.stack.model_mesh,
            tier=self.stack.stack.tier,
            catalog=self.catalog,
            pools=list(self.stack.gpu_pools),
        )

    def allowed_runtimes(self) -> None:
        """``controlPlane.allowedRuntimes`` names catalog runtimes, and every model uses one of them."""
        allowed = self.stack.control_plane.allowed_runtimes
        if allowed is None:
            return
        for j, name in enumerate(allowed):
            if name not in self.catalog:
                self.add(
                    ("controlPlane", "allowedRuntimes", j),
                    f"unknown runtime (catalog: {', '.join(sorted(self.catalog))})",
                    name,
                )
        external = {r.name for r in self.stack.external_runtimes}
        for i, model in enumerate(self.stack.models):
            if model.runtime not in allowed and model.runtime not in external:
                self.add(
                    ("models", self.model_index(i), "runtime"),
                    f"runtime is not allowed on this platform (controlPlane.allowedRuntimes: "
                    f"{', '.join(allowed) or 'none'}); use one of those or add it there",
                    model.runtime,
                )

    def gpu_pools(self) -> None:
        """The pools among themselves, each model's GPU request against its pool, the tenants' quotas."""
        pools = list(self.stack.gpu_pools)
        self.found += gpu_pool.problems(pools)
        by_name = {p.name: p for p in pools}
        known = ", ".join(sorted(by_name)) or "none declared"
        for i, model in enumerate(self.stack.models):
            res = model.resources
            if res.pool is None:
                continue
            path: FieldPath = ("models", self.model_index(i), "resources")
            pool = by_name.get(res.pool)
            if pool is None:
                self.add((*path, "pool"), f"unknown GPU pool (gpuPools: {known})", res.pool)
                continue
            self.found += gpu_pool.gpu_request_problems(
                path,
                gpu=res.gpu,
                mig_profile=res.mig_profile,
                exclusive_gpu_memory=res.exclusive_gpu_memory,
                pool=pool,
            )
        for t, tenant in enumerate(self.stack.tenants):
            self.found += gpu_quota_problems(tenant, pools, path=("tenants", self.tenant_index(t)))

    def mesh_models(self) -> None:
        """Every mesh model fits a pod of its runtime."""
        mesh = self.stack.model_mesh
        if not mesh.enabled:
            return
        for i, model in enumerate(self.stack.models):
            spec = self.catalog.get(model.runtime)
            if self.stack.mode(model) != "modelmesh" or spec is None or spec.mesh is None:
                continue
            self.found += model_mesh.model_problems(
                model, mesh=mesh, spec=spec, path=("models", self.model_index(i))
            )


def problems(
    stack: ServingPlatformArgs, *, catalog: Catalog, omitted: Omitted | None = None
) -> list[Problem]:
    """Every cross-field problem of a stack, at its path in the file.

    ``omitted`` tells the rules which models and tenants the loader left out (their own fields
    are invalid), so paths keep the file's indexes and references to them are not reported.
    """
    return _Rules(stack, catalog, omitted or Omitted()).run()


_PASSED: dict[int, tuple[weakref.ref[ServingPlatformArgs], Catalog]] = {}
"""Stacks that passed ``check`` (by identity, while they live) and the catalog they passed against.

Stacks are frozen, so one that passed stays valid: the loader checks it, and ``build`` does not
walk 20,000 models a second time (about 10 us each).
"""


def check(stack: ServingPlatformArgs, *, catalog: Catalog) -> None:
    """Refuse a stack that breaks a cross-field rule (a stack that passed against ``catalog`` is not walked again).

    Raises:
        ProblemError: every problem, each at its path in the stack.
    """
    key = id(stack)
    passed = _PASSED.get(key)
    if passed is not None and passed[0]() is stack and passed[1] is catalog:
        return
    found = problems(stack, catalog=catalog)
    if found:
        raise ProblemError(found)
    _PASSED[key] = (weakref.ref(stack, lambda _: _PASSED.pop(key, None)), catalog)


def version_problems(
    stack: ServingPlatformArgs, records: Mapping[str, ModelRecord], *, catalog: Catalog
) -> list[Problem]:
    """Problems of the stable versions that rollouts keep serving, at their models' paths in the stack.

    During a rollout in standard or modelmesh mode the stable version is rendered from its spec
    in the lock with the stack entry's in-place fields (scaling, labels, ...). A change to both
    (``runtime: sklearn`` to ``mlserver`` together with ``metric: queue-depth``, which only the
    new runtime has a query for) passes the stack's rules yet cannot be rendered for the stable
    version, so ``rollout apply`` refuses it and a render under such a lock names it. Knative
    renders only the candidate (it keeps the stable revision itself): nothing to check.
    """
    rules = _Rules(stack, catalog, Omitted())
    found: list[Problem] = []
    for i, model in enumerate(stack.models):
        mode = stack.mode(model)
        record = records.get(model_key(stack.tenant(model.tenant).namespace_name, model.name))
        if mode == "knative" or record is None or record.rollout is None:
            continue
        path: FieldPath = ("models", i)
        serving = (
            f"the stable version {record.stable.version!r} (runtime {record.stable.spec.get('runtime')!r}) "
            "keeps serving until the rollout is promoted"
        )
        advice = "make this change once the rollout is promoted, or roll it out with strategy direct"
        try:
            stable = with_spec(model, record.stable.spec)
        except (ValidationError, ProblemError, ValueError) as err:
            found.append(
                Problem(path, f"{serving}, and it cannot take this entry's fields ({_first(err)}); {advice}")
            )
            continue
        rules.found = []
        rules.runtime_fit(path, stable, mode)
        # The entry's own scaling (``with_spec`` marks every field as set), on the stable runtime.
        rules.found += scaling.problems(mode, model.scaling, runtime=stable.runtime, path=(*path, "scaling"))
        rules.mesh_mode(path, stable, mode)
        found += [
            Problem(p.path, f"{serving}, and for it: {p.message}; {advice}", p.value) for p in rules.found
        ]
        # A lock an earlier modelplane wrote may keep a version whose pods a cluster refuses
        # (a modelcar under Pod Security "restricted"): it never served, so nothing waits for it.
        found += [
            Problem(
                p.path,
                f"{serving}, and its pods cannot start: {p.message}; roll this change out with strategy direct, "
                "which replaces the stable version at once",
                p.value,
            )
            for p in model_rules.storage_problems(
                stable,
                mode=mode,
                kubernetes=stack.versions.kubernetes,
                image_volume=stack.control_plane.image_volume,
                pod_security=rules.pod_security(stable),
                path=path,
                advise=False,
            )
            # The transformer and explainer are the stack entry's own, checked with it.
            if p.path[len(path)] == "storage"
        ]
    return found


def _first(err: Exception) -> str:
    if isinstance(err, ValidationError):
        first = err.errors(include_url=False)[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def removal_problems(
    head: ServingPlatformArgs,
    *,
    models: Collection[str] = (),
    tenants: Collection[str] = (),
    mesh: bool = False,
    monitoring: bool = False,
) -> list[Problem]:
    """Removals from a prod stack that ``stack.allowRemoval`` does not allow, at that field.

    ``models`` are lock keys (``<namespace>/<name>``) of models the change removes, ``tenants``
    the tenants' names; ``mesh`` and ``monitoring`` say the change turns them off. Each deletes
    what serves now (an InferenceService, a namespace with everything in it, etcd and its
    volumes, Prometheus and its history), so a prod change needs to say so, in the same change.
    """
    if head.stack.tier != "prod":
        return []
    wanted = [f"models/{key}" for key in sorted(models)] + [f"tenants/{name}" for name in sorted(tenants)]
    wanted += ["modelMesh"] * mesh + ["monitoring"] * monitoring
    allowed = set(head.stack.allow_removal)
    return [
        Problem(
            ("stack", "allowRemoval"),
            f"this change removes {target} from a prod stack, which deletes what serves now; add "
            f"{target!r} to stack.allowRemoval to allow it (and drop it once the change is deployed)",
        )
        for target in wanted
        if target not in allowed
    ]


def stack_removals(base: ServingPlatformArgs, head: ServingPlatformArgs) -> list[Problem]:
    """``removal_problems`` of changing ``base`` into ``head`` (a pull request's preview)."""

    def keys(stack: ServingPlatformArgs) -> set[str]:
        return {model_key(stack.tenant(m.tenant).namespace_name, m.name) for m in stack.models}

    return removal_problems(
        head,
        models=keys(base) - keys(head),
        tenants={t.name for t in base.tenants} - {t.name for t in head.tenants},
        mesh=base.model_mesh.enabled and not head.model_mesh.enabled,
        monitoring=(base.monitoring.enabled and not head.monitoring.enabled)
        or (base.monitoring.install_prometheus and not head.monitoring.install_prometheus),
    )
