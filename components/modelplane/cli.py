"""The ``modelplane`` command line.

Contracts: exit 0 on success; exit 2 for usage and input errors, one line per problem on
stderr as ``FILE: field.path: message``; exit 1 only for internal failures, which print a
traceback only with ``--debug``. Output is deterministic.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from modelplane.errors import LockError, PlatformError, StackError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line error and never prints a traceback."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def _load(path: str):  # type: ignore[no-untyped-def]
    from modelplane.stack import load_stack

    return load_stack(path)


def _lock(path: str, stack: str):  # type: ignore[no-untyped-def]
    """The lock beside a stack file (an empty one when nothing is deployed yet)."""
    from modelplane.rollout.lock import load_lock

    return load_lock(path, stack=stack)


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate stack files and, with --schemas, their rendered objects."""
    from modelplane.build import build
    from modelplane.validation import CrdSchemas, validate_objects

    crds = CrdSchemas.from_dir(Path(args.schemas)) if args.schemas else None
    problems: list[str] = []
    for file in args.files:
        try:
            stack = _load(file)
        except StackError as err:
            problems += err.problems
            continue
        try:
            lock = _lock(file, stack.stack.name)
        except LockError as err:
            problems += str(err).splitlines()
            continue
        rendered = build(stack, lock=lock)
        if crds is not None:
            schema_problems = validate_objects(
                rendered.objects, kubernetes_version=stack.versions.kubernetes, crds=crds
            )
            if schema_problems:
                problems += [f"{file}: rendered {p}" for p in schema_problems]
                continue
        if not args.quiet:
            print(f"{file}: valid ({len(stack.models)} models, {len(rendered.objects)} objects)")
    for line in problems:
        print(line, file=sys.stderr)
    return EXIT_INPUT if problems else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """Render a stack's objects for GitOps."""
    from modelplane.build import build
    from modelplane.render import gitops_tree, stream_objects, to_yaml_stream, write_tree

    stack = _load(args.file)
    rendered = build(stack, lock=_lock(args.file, stack.stack.name))
    name = stack.stack.name
    if args.output == "-":
        sys.stdout.write(
            to_yaml_stream(stream_objects(rendered.objects, rendered.charts, stack=name, engine=args.gitops))
        )
        return EXIT_OK
    out_dir = Path(args.output or f"deploy/{name}")
    files = gitops_tree(
        rendered.objects,
        rendered.charts,
        stack=name,
        engine=args.gitops,
        path_prefix=_repository_path(out_dir, name),
    )
    write_tree(files, out_dir)
    kinds = Counter(o["kind"] for o in rendered.objects)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(
        f"{args.file}: wrote {len(files)} files to {out_dir}/ ({summary}; {len(rendered.charts)} upstream charts)"
    )
    return EXIT_OK


def _repository_path(out_dir: Path, stack: str) -> str:
    """The output directory as Flux finds it in the repository (the working directory is its root).

    Flux Kustomizations name their path relative to the repository root, so the path in
    ``sync.yaml`` follows ``-o``; an output outside the working directory keeps the default.
    """
    here = Path.cwd().resolve()
    try:
        relative = (here / out_dir).resolve().relative_to(here)
    except ValueError:
        return f"./deploy/{stack}"
    return f"./{relative.as_posix()}"


def cmd_summary(args: argparse.Namespace) -> int:
    """Print objects per kind and namespace."""
    from modelplane.build import build
    from modelplane.upstream import KustomizeRelease

    for file in args.files:
        stack = _load(file)
        rendered = build(stack)
        print(f"{file}: stack {stack.stack.name} ({stack.stack.tier}), {len(stack.models)} models")
        counts = Counter((o["kind"], o["metadata"].get("namespace", "(cluster)")) for o in rendered.objects)
        width = max((len(k) for k, _ in counts), default=4)
        for (kind, namespace), n in sorted(counts.items()):
            print(f"  {kind:<{width}}  {namespace:<20} {n:>5}")
        for chart in rendered.charts:
            if isinstance(chart, KustomizeRelease):
                print(
                    f"  upstream {chart.release} {chart.ref} (kustomize {chart.repository}) -> {chart.namespace}"
                )
            else:
                print(f"  upstream {chart.chart} {chart.version} -> {chart.namespace}")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan capacity: GPU pools, mesh runtime pods, pods and pod IPs, at minimum and maximum replicas."""
    import json

    from modelplane import capacity
    from modelplane.errors import CapacityError

    stack = _load(args.file)
    result = capacity.plan(stack, pod_ip_budget=args.pod_ips)
    if args.format == "json":
        sys.stdout.write(json.dumps(capacity.to_dict(result), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(capacity.format_text(result))
    try:
        capacity.check(result, args.file)
    except CapacityError as err:
        for line in str(err).splitlines():
            print(line, file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def cmd_schemas_fetch(args: argparse.Namespace) -> int:
    """Download the CRD schemas of a stack's pinned versions."""
    from modelplane.validation import fetch_schemas

    stack = _load(args.file)
    for path in fetch_schemas(stack.versions, Path(args.out)):
        print(path)
    return EXIT_OK


EXIT_DRIFT = 3


def cmd_status(args: argparse.Namespace) -> int:
    """Show live InferenceService status and drift from the rendered stack (exit 3 on drift)."""
    from modelplane.build import build
    from modelplane.status import format_report, read_live, stack_status

    stack = _load(args.file)
    # What is deployed is the render under the lock (named predictors, canaries, their queries).
    rendered = build(stack, lock=_lock(args.file, stack.stack.name)).objects
    namespaces = [o["metadata"]["namespace"] for o in rendered if o["kind"] == "InferenceService"]
    live = read_live(namespaces, context=args.context)
    report = stack_status(rendered, live, stack=stack.stack.name)
    sys.stdout.write(format_report(report))
    return EXIT_OK if report.in_sync else EXIT_DRIFT


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="modelplane", description="Platform-as-code for model serving on Kubernetes.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="validate stack files", description=cmd_validate.__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="stack files")
    p.add_argument(
        "--schemas", metavar="DIR", help="also validate rendered custom resources against these CRDs"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("render", help="render GitOps manifests", description=cmd_render.__doc__)
    p.add_argument("file", metavar="FILE", help="stack file")
    p.add_argument(
        "-o", "--output", metavar="DIR|-", help="output directory (default deploy/<stack>/), or - for stdout"
    )
    p.add_argument(
        "--gitops", choices=("flux", "argocd"), default="flux", help="GitOps engine (default flux)"
    )
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("summary", help="objects per kind and namespace", description=cmd_summary.__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="stack files")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("status", help="live model status and drift", description=cmd_status.__doc__)
    p.add_argument("file", metavar="FILE", help="stack file")
    p.add_argument("--context", metavar="CTX", help="kubeconfig context (default: the current one)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("plan", help="capacity plan of a stack", description=cmd_plan.__doc__)
    p.add_argument("file", metavar="FILE", help="stack file")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument(
        "--pod-ips",
        type=int,
        metavar="N",
        default=None,
        help="pod IPs available to the stack (checked if given)",
    )
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("schemas", help="CRD schemas of the pinned versions")
    schemas = p.add_subparsers(dest="schemas_command", required=True, parser_class=_Parser)
    f = schemas.add_parser(
        "fetch", help="download CRDs for a stack's pinned versions", description=cmd_schemas_fetch.__doc__
    )
    f.add_argument("file", metavar="FILE", help="stack file")
    f.add_argument("--out", metavar="DIR", required=True, help="directory to write <group>/<kind>.yaml into")
    f.set_defaults(func=cmd_schemas_fetch)

    from modelplane.preview.cli import add_preview_parser
    from modelplane.probe import add_probe_parser
    from modelplane.rollout.cli import add_rollout_parser

    add_preview_parser(sub)
    add_probe_parser(sub)
    add_rollout_parser(sub)
    return parser


def _accept_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--debug`` follow any subcommand too (``modelplane render FILE --debug``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="show tracebacks of internal errors",
                )
                _accept_debug_everywhere(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    _accept_debug_everywhere(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # --help and usage errors: return their code, so in-process callers get an int too.
        return exit_.code if isinstance(exit_.code, int) else EXIT_INPUT
    from modelplane.rollout.cli import without_cyclic_gc

    try:
        with without_cyclic_gc():
            code: int = args.func(args)
        return code
    except StackError as err:
        for line in err.problems:
            print(line, file=sys.stderr)
        return EXIT_INPUT
    except LockError as err:
        # Lock problems are already `FILE: field.path: message` lines.
        print(str(err), file=sys.stderr)
        return EXIT_INPUT
    except PlatformError as err:
        print(f"modelplane: {err}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        # The reader went away (`render -o - | head`): stop quietly, and keep Python's
        # final flush of stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("modelplane: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        else:
            print(
                f"modelplane: internal error: {type(err).__name__}: {err} (run with --debug for details)",
                file=sys.stderr,
            )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
