"""The ``modelplane`` command line.

Contracts: exit 0 on success; exit 2 for usage and input errors, one line per problem on
stderr as ``FILE: field.path: message``; exit 1 only for internal failures, which print a
traceback only with ``--debug``; exit 3 means "look" (drift, a stale render, a failed gate, a
destructive preview); exit 4 means Prometheus could not be asked. Output is deterministic.
Every command that reports takes ``--output json`` (a schema per report in
``modelplane/schemas/``); progress shows on a terminal only, never when piped or ``--quiet``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from modelplane import console
from modelplane.errors import LockError, PlatformError, ProblemError, StackError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_LOOK = 3
EXIT_DRIFT = EXIT_LOOK
EXIT_STALE = EXIT_LOOK
REPORT_SCHEMA_VERSION = 1


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line error and never prints a traceback."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message}\n")


def _load(path: str):  # type: ignore[no-untyped-def]
    from modelplane.stack import load_stack

    with console.progress(f"loading {path}"):
        return load_stack(path)


def _lock(path: str, stack: str):  # type: ignore[no-untyped-def]
    """The lock beside a stack file (an empty one when nothing is deployed yet)."""
    from modelplane.rollout.lock import load_lock

    return load_lock(path, stack=stack)


def _images(path: str, stack: str):  # type: ignore[no-untyped-def]
    """The image lock beside a stack file (an empty one when nothing is pinned yet)."""
    from modelplane.image_lock import load_image_lock

    return load_image_lock(path, stack=stack)


def _problem_lines(source: str, err: ProblemError) -> list[str]:
    """A ``ProblemError``'s problems as the loader prints them: ``FILE: field.path: message``."""
    from modelplane.stack_yaml import problem_line

    return [problem_line(source, p.path, p.message, p.value, p.value is not None) for p in err.problems]


def _json(ns: argparse.Namespace) -> bool:
    return getattr(ns, "output", "text") == "json"


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate stack files and, with --schemas, their rendered objects."""
    from modelplane.build import build
    from modelplane.validation import CrdSchemas, validate_objects

    crds = CrdSchemas.from_dir(Path(args.schemas)) if args.schemas else None
    problems: list[str] = []
    files: list[dict[str, Any]] = []
    for file in args.files:
        entry: dict[str, Any] = {"file": file, "valid": False, "stack": None, "models": None, "objects": None}
        files.append(entry)
        try:
            stack = _load(file)
        except StackError as err:
            problems += err.problems
            entry["problems"] = err.problems
            continue
        try:
            lock = _lock(file, stack.stack.name)
            images = _images(file, stack.stack.name)
        except LockError as err:
            problems += err.problems
            entry["problems"] = err.problems
            continue
        try:
            with console.progress(f"rendering {file} ({len(stack.models):,} models)"):
                rendered = build(stack, lock=lock, images=images)
        except ProblemError as err:
            problems += _problem_lines(file, err)
            entry["problems"] = _problem_lines(file, err)
            continue
        found: list[str] = []
        if crds is not None:
            with console.progress(f"checking {file}'s objects against their schemas"):
                found = [
                    f"{file}: rendered {p}"
                    for p in validate_objects(
                        rendered.objects, kubernetes_version=stack.versions.kubernetes, crds=crds
                    )
                ]
        problems += found
        entry.update(
            valid=not found,
            stack=stack.stack.name,
            models=len(stack.models),
            objects=len(rendered.objects),
            problems=found,
        )
        if not args.quiet and not _json(args) and not found:
            print(f"{file}: valid ({len(stack.models)} models, {len(rendered.objects)} objects)")
    for line in problems:
        print(line, file=sys.stderr)
    if _json(args):
        for entry in files:
            entry.setdefault("problems", [])
        console.write_json({"schemaVersion": REPORT_SCHEMA_VERSION, "valid": not problems, "files": files})
    return EXIT_INPUT if problems else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """Render a stack's objects for GitOps; with --check, list what is stale instead (exit 3)."""
    from modelplane import gitops
    from modelplane.build import build
    from modelplane.render import stream_objects, write_tree, write_yaml_stream

    stack = _load(args.file)
    lock = _lock(args.file, stack.stack.name)
    images = _images(args.file, stack.stack.name)
    name = stack.stack.name
    models = f"{len(stack.models):,} models"
    if args.output == "-":
        if args.check:
            raise PlatformError("--check compares a directory: give -o DIR (or nothing for deploy/<stack>)")
        with console.progress(f"rendering {args.file} ({models})") as step:
            rendered = build(stack, lock=lock, images=images)
            objects = stream_objects(
                rendered.objects, rendered.charts, stack=name, engine=args.gitops or "flux"
            )
            total = f"{len(objects):,}"
            step.update(f"writing {total} objects")
            write_yaml_stream(
                objects, sys.stdout, on_object=lambda done: step.update(f"writing objects ({done:,}/{total})")
            )
        return EXIT_OK
    out_dir = Path(args.output) if args.output else gitops.default_out_dir(name)
    with console.progress(f"rendering {args.file} ({models})"):
        rendered = build(stack, lock=lock, images=images)
        files = gitops.tree_files(name, rendered, out_dir, engine=args.gitops)
    if args.check:
        from modelplane.render import stale_files

        stale = stale_files(files, out_dir)
        if args.format == "json":
            console.write_json(
                {
                    "schemaVersion": REPORT_SCHEMA_VERSION,
                    "file": args.file,
                    "stack": name,
                    "directory": out_dir.as_posix(),
                    "upToDate": not stale,
                    "stale": [{"path": f"{out_dir.as_posix()}/{p}", "kind": k} for p, k in stale],
                }
            )
        for path, kind in stale:
            print(f"{out_dir.as_posix()}/{path}: {kind}", file=sys.stderr)
        if stale:
            print(
                f"{out_dir.as_posix()}/: {len(stale)} stale files; run `modelplane render {args.file}` "
                "and commit the result with the lock",
                file=sys.stderr,
            )
            return EXIT_STALE
        if args.format != "json":
            print(f"{out_dir.as_posix()}/: up to date ({len(files)} files)")
        return EXIT_OK
    with console.progress(f"writing {out_dir}/ ({len(files):,} files)") as step:
        count = f"{len(files):,}"
        write_tree(
            files, out_dir, on_file=lambda done: step.update(f"writing {out_dir}/ ({done:,}/{count} files)")
        )
    kinds = Counter(o["kind"] for o in rendered.objects)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(
        f"{args.file}: wrote {len(files)} files to {out_dir}/ ({summary}; {len(rendered.charts)} upstream charts)"
    )
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    """Print objects per kind and namespace."""
    from modelplane.build import build
    from modelplane.upstream import KustomizeRelease

    report: list[dict[str, Any]] = []
    for file in args.files:
        stack = _load(file)
        rendered = build(stack)
        counts = Counter((o["kind"], o["metadata"].get("namespace", "(cluster)")) for o in rendered.objects)
        upstream = []
        for chart in rendered.charts:
            if isinstance(chart, KustomizeRelease):
                upstream.append(
                    {
                        "name": chart.release,
                        "version": chart.ref,
                        "source": f"kustomize {chart.repository}",
                        "namespace": chart.namespace,
                    }
                )
            else:
                upstream.append(
                    {
                        "name": chart.chart,
                        "version": chart.version,
                        "source": "helm",
                        "namespace": chart.namespace,
                    }
                )
        report.append(
            {
                "file": file,
                "stack": stack.stack.name,
                "tier": stack.stack.tier,
                "models": len(stack.models),
                "objects": [
                    {"kind": kind, "namespace": namespace, "count": n}
                    for (kind, namespace), n in sorted(counts.items())
                ],
                "upstream": upstream,
            }
        )
        if _json(args):
            continue
        print(f"{file}: stack {stack.stack.name} ({stack.stack.tier}), {len(stack.models)} models")
        width = max((len(k) for k, _ in counts), default=4)
        for (kind, namespace), n in sorted(counts.items()):
            print(f"  {kind:<{width}}  {namespace:<20} {n:>5}")
        for item in upstream:
            if item["source"] == "helm":
                print(f"  upstream {item['name']} {item['version']} -> {item['namespace']}")
            else:
                print(
                    f"  upstream {item['name']} {item['version']} ({item['source']}) -> {item['namespace']}"
                )
    if _json(args):
        console.write_json({"schemaVersion": REPORT_SCHEMA_VERSION, "stacks": report})
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """Plan capacity: GPU pools, mesh runtime pods, pods and pod IPs, at minimum and maximum replicas."""
    from modelplane import capacity
    from modelplane.errors import CapacityError

    stack = _load(args.file)
    if stack.pinning() == "digest":
        from modelplane.build import build

        # What is planned must be deployable: under images.pinning: digest, every image pinned.
        with console.progress(f"checking {args.file}'s images"):
            build(stack, lock=_lock(args.file, stack.stack.name), images=_images(args.file, stack.stack.name))
    with console.progress(f"planning {args.file} ({len(stack.models):,} models)"):
        result = capacity.plan(stack, pod_ip_budget=args.pod_ips)
    if args.output == "json":
        console.write_json(capacity.to_dict(result))
    elif args.output == "html":
        from modelplane.plan_html import to_html

        sys.stdout.write(to_html(capacity.to_dict(result)))
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


def cmd_schemas_stack(args: argparse.Namespace) -> int:
    """Print (or write) the JSON Schema of stack files, for editors and the YAML language server."""
    from modelplane.stack_schema import schema_text

    text = schema_text(fragment=args.fragment)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Compare the live models with what Git says is deployed (the stack under its lock); exit 3 on drift."""
    from modelplane import status
    from modelplane.build import build
    from modelplane.rollout.lock import lock_path

    stack = _load(args.file)
    # What is deployed is the render under the lock (named predictors, canaries, their queries).
    rendered = build(
        stack, lock=_lock(args.file, stack.stack.name), images=_images(args.file, stack.stack.name)
    ).objects
    namespaces = sorted({o["metadata"]["namespace"] for o in rendered if o["kind"] == "InferenceService"})
    with console.progress("reading the cluster"):
        live = status.read_live(namespaces, context=args.context)
    report = status.stack_status(rendered, live, stack=stack.stack.name)
    if _json(args):
        console.write_json(
            status.to_dict(report, stack=stack.stack.name, file=args.file, lock=str(lock_path(args.file)))
        )
    else:
        sys.stdout.write(status.format_report(report))
    return EXIT_OK if report.in_sync else EXIT_DRIFT


def cmd_changed(args: argparse.Namespace) -> int:
    """List the stack files a change touches since --base: the stack, its lock or image lock, its Pulumi settings or an included file changed, or it was deleted.

    A directory stands for the stack files directly in it (not locks, Pulumi settings or the
    fragments in its subdirectories). One path per line, for a CI job to preview each.
    """
    from modelplane.gitops import changed_stacks

    changed = changed_stacks(args.paths, args.base)
    if _json(args):
        console.write_json(
            {
                "schemaVersion": REPORT_SCHEMA_VERSION,
                "base": args.base,
                "stacks": [
                    {"file": c.file, "deleted": c.deleted, "because": list(c.because)} for c in changed
                ],
            }
        )
    else:
        sys.stdout.writelines(f"{c.file}\n" for c in changed)
    return EXIT_OK


def _output_option(p: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")) -> None:
    p.add_argument(
        "--output",
        choices=choices,
        default=choices[0],
        help=f"report format (default {choices[0]})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from modelplane.completion import add_completion_parser
    from modelplane.images_cli import add_images_parser
    from modelplane.preview.cli import add_preview_parser
    from modelplane.probe import add_probe_parser
    from modelplane.rollout.cli import add_rollout_parser
    from modelplane.scaffold import add_import_parser, add_init_parser

    parser = _Parser(prog="modelplane", description="Platform-as-code for model serving on Kubernetes.")
    parser.add_argument("--version", action="version", version=f"modelplane {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("validate", help="validate stack files", description=cmd_validate.__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="stack files")
    p.add_argument(
        "--schemas", metavar="DIR", help="also validate rendered custom resources against these CRDs"
    )
    _output_option(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("render", help="render GitOps manifests", description=cmd_render.__doc__)
    p.add_argument("file", metavar="FILE", help="stack file")
    p.add_argument(
        "-o", "--output", metavar="DIR|-", help="output directory (default deploy/<stack>/), or - for stdout"
    )
    p.add_argument(
        "--gitops",
        choices=("flux", "argocd"),
        default=None,
        help="GitOps engine (default: the existing render's, else flux)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list the files that differ from what renders and exit 3 if any",
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="report format of --check (default text)"
    )
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("summary", help="objects per kind and namespace", description=cmd_summary.__doc__)
    p.add_argument("files", nargs="+", metavar="FILE", help="stack files")
    _output_option(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("status", help="live models and drift from Git", description=cmd_status.__doc__)
    p.add_argument("file", metavar="FILE", help="stack file")
    p.add_argument("--context", metavar="CTX", help="kubeconfig context (default: the current one)")
    _output_option(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("plan", help="capacity plan of a stack", description=cmd_plan.__doc__)
    p.add_argument("file", metavar="FILE", help="stack file")
    p.add_argument(
        "--output",
        "--format",
        dest="output",
        choices=("text", "json", "html"),
        default="text",
        help="report format (default text; html: one self-contained page with charts)",
    )
    p.add_argument(
        "--pod-ips",
        type=int,
        metavar="N",
        default=None,
        help="pod IPs available to the stack (checked if given)",
    )
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("schemas", help="JSON Schemas: CRDs of the pinned versions, the stack file")
    schemas = p.add_subparsers(dest="schemas_command", required=True, parser_class=_Parser, metavar="COMMAND")
    f = schemas.add_parser(
        "fetch", help="download CRDs for a stack's pinned versions", description=cmd_schemas_fetch.__doc__
    )
    f.add_argument("file", metavar="FILE", help="stack file")
    f.add_argument("--out", metavar="DIR", required=True, help="directory to write <group>/<kind>.yaml into")
    f.set_defaults(func=cmd_schemas_fetch)
    f = schemas.add_parser(
        "stack", help="the JSON Schema of stack files", description=cmd_schemas_stack.__doc__
    )
    f.add_argument(
        "--fragment",
        action="store_true",
        help="the schema of a file that includes or is included (nothing required)",
    )
    f.add_argument("--out", metavar="FILE", help="write it to FILE (default: stdout)")
    f.set_defaults(func=cmd_schemas_stack)

    p = sub.add_parser(
        "changed", help="stack files a change touches since a revision", description=cmd_changed.__doc__
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="stack files, or directories of them")
    p.add_argument("--base", required=True, metavar="REV", help="the revision the change is counted from")
    _output_option(p)
    p.set_defaults(func=cmd_changed)

    add_preview_parser(sub)
    add_images_parser(sub)
    add_probe_parser(sub)
    add_rollout_parser(sub)
    add_init_parser(sub)
    add_import_parser(sub)
    add_completion_parser(sub)
    return parser


def version() -> str:
    """The installed modelplane's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("modelplane")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "0+unknown"


def _common_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--debug`` and ``--quiet`` come before or after any subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="show tracebacks of internal errors",
                )
                if not any("--quiet" in a.option_strings for a in sub._actions):
                    sub.add_argument(
                        "-q",
                        "--quiet",
                        action="store_true",
                        default=argparse.SUPPRESS,
                        help="no progress and no hints, only results and problems",
                    )
                _common_flags_everywhere(sub)


def make_parser() -> argparse.ArgumentParser:
    """The whole parser, with the flags every subcommand takes."""
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress and no hints, only results and problems"
    )
    _common_flags_everywhere(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # --help, --version and usage errors: return their code, so in-process callers get an int too.
        return exit_.code if isinstance(exit_.code, int) else EXIT_INPUT
    console.configure(quiet=bool(getattr(args, "quiet", False)))
    args.root_parser = parser
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
        # Lock problems are already `FILE: field.path: message` lines, one problem each.
        for line in err.problems:
            print(line, file=sys.stderr)
        return EXIT_INPUT
    except ProblemError as err:
        # Problems at field paths of the stack the command read (a stack built under its lock).
        for line in _problem_lines(getattr(args, "file", None) or "modelplane", err):
            print(line, file=sys.stderr)
        return EXIT_INPUT
    except PlatformError as err:
        for line in str(err).splitlines():
            print(f"modelplane: {line}", file=sys.stderr)
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
