"""Generate the long tail of mesh models in stacks/prod.yaml (one line per model).

The prod stack serves hundreds of small per-merchant and per-locale models in the model
mesh. Writing them by hand would be error-prone, so this script rewrites the block between
the BEGIN and END markers of the stack file; everything else in the file is left as it is.
The output is deterministic: sizes and versions come from the model's index, not from a
random generator, so re-running the script changes nothing.

    python scripts/gen_prod_mesh.py            # rewrite stacks/prod.yaml
    python scripts/gen_prod_mesh.py --check    # exit 1 if the file is not up to date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

STACK = Path(__file__).resolve().parent.parent / "stacks" / "prod.yaml"
BEGIN = "  # --- BEGIN generated mesh models (scripts/gen_prod_mesh.py; do not edit by hand) ---"
END = "  # --- END generated mesh models ---"

MERCHANTS = 400
"""Per-merchant fraud models (payments, MLServer: sklearn and XGBoost)."""
LOCALES = [
    "ar",
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fi",
    "fr",
    "ga",
    "he",
    "hi",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "lt",
    "lv",
    "ms",
    "mt",
    "nl",
    "no",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "sv",
    "th",
    "tr",
    "uk",
    "vi",
    "zh",
]
"""Per-locale query rewriting and spelling models (search, Triton: ONNX)."""
SIZES_MI = [8, 16, 16, 24, 32, 32, 48, 64]
"""Loaded sizes of the small models, cycled by index (MiB)."""


def merchant(i: int) -> str:
    """The stack line of merchant model ``i``."""
    fmt = '{name: xgboost, version: "2"}' if i % 3 == 0 else '{name: sklearn, version: "1"}'
    version = f"v{1 + i % 4}"
    return (
        f"  - {{name: merchant-{i:04d}, tenant: payments, runtime: mlserver, deploymentMode: modelmesh, "
        f'format: {fmt}, storage: {{uri: "s3://models-prod/merchants/{i:04d}/{version}", secretName: models-s3}}, '
        f"version: {version}, resources: {{memory: {SIZES_MI[i % len(SIZES_MI)]}Mi}}}}"
    )


def locale_models(locale: str, i: int) -> list[str]:
    """The stack lines of one locale's query-rewrite and spelling models."""
    lines = []
    for task, size in (("query-rewrite", 48), ("spell", 24)):
        version = f"v{2 + i % 3}"
        lines.append(
            f"  - {{name: {task}-{locale}, tenant: search, runtime: triton, deploymentMode: modelmesh, "
            f'format: {{name: onnx, version: "1"}}, storage: {{uri: "s3://models-prod/{task}/{locale}/{version}", '
            f"secretName: models-s3}}, version: {version}, resources: {{memory: {size}Mi}}}}"
        )
    return lines


def block() -> str:
    """The whole generated block, markers included."""
    lines = [BEGIN]
    lines += [merchant(i) for i in range(1, MERCHANTS + 1)]
    for i, locale in enumerate(LOCALES):
        lines += locale_models(locale, i)
    lines.append(END)
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """The stack file with its generated block replaced."""
    start = text.index(BEGIN)
    end = text.index(END, start) + len(END) + 1
    return text[:start] + block() + text[end:]


def main() -> int:
    """Rewrite (or, with --check, verify) the stack file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the stack file is not up to date")
    args = parser.parse_args()
    text = STACK.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(
                f"{STACK.name}: generated mesh models are out of date; run scripts/gen_prod_mesh.py",
                file=sys.stderr,
            )
            return 1
        return 0
    STACK.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
