"""`cie10 codes show|search|stats|export|publish`: look up and publish the code catalogue."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from cie10.catalog import LABEL_LANGUAGES, load_catalog
from cie10.errors import NoMatchError
from cie10.ranges import AT_LEAST_ONE, int_option
from cie10.settings import get_settings

logger = logging.getLogger(__name__)


def _show(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    entry = catalog[args.code]
    out = sys.stdout
    out.write(f"{entry.code}  {entry.title}\n")
    out.write(f"  kind: {entry.kind}   billable: {'yes' if entry.billable else 'no'}\n")
    out.write(f"  path: {' > '.join(catalog.path(entry.code))}\n")
    if entry.children:
        out.write(f"  children: {', '.join(entry.children[:20])}{' ...' if len(entry.children) > 20 else ''}\n")
    for term in entry.inclusion_terms:
        out.write(f"  includes: {term}\n")
    for language in LABEL_LANGUAGES[1:]:
        label = catalog.label(entry.code, language)
        if label is None:
            continue
        origin = f"inherited from {label.code}" if label.inherited else "own"
        out.write(f"  {language}: {label.text}  [{label.source}, {origin}]\n")
    return 0


def _search(args: argparse.Namespace) -> int:
    hits = load_catalog().search(args.query, limit=args.limit)
    if not hits:
        raise NoMatchError(
            f"no match for {args.query!r}: give a code (J45.909), a code prefix (J45) or words that start words of "
            "a title in English, Spanish, French, Portuguese, Italian or German"
        )
    for entry in hits:
        sys.stdout.write(f"{entry.code:<10} {'B' if entry.billable else ' '} {entry.title}\n")
    return 0


def _stats(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    out = sys.stdout
    out.write(f"{catalog.version}: {len(catalog)} entries\n\n")
    out.write(f"{'lang':<5} {'own labels':>10} {'billable own':>13} {'billable own+inherited':>23}  sources\n")
    for row in catalog.coverage():
        out.write(
            f"{row['language']:<5} {row['codes_with_own_label']:>10} {row['billable_with_own_label']:>13} "
            f"{row['billable_with_inherited_or_own']:>12} / {row['billable_total']:<8}  "
            f"{', '.join(row['sources']) or '-'}  {row['note']}\n"
        )
    report = catalog.join_report
    out.write("\njoin: accepted / rejected (titles disagree) / rejected (V00-Y99 4th character) / not in CM\n")
    for key in sorted(report.accepted):
        out.write(
            f"  {key:<22} {report.accepted[key]:>6} {report.rejected_meaning[key]:>6} "
            f"{report.rejected_v_y_4char[key]:>6} {report.not_in_cm[key]:>6}\n"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from cie10.codes_dataset import write_codes_dataset

    write_codes_dataset(load_catalog(), Path(args.out))
    return 0


def _publish(args: argparse.Namespace) -> int:
    from cie10 import hub
    from cie10.codes_dataset import CODES_REPO_NAME, write_codes_dataset

    # the Hub first: an endpoint that does not answer is one line, before the export writes anything
    if args.target == "local":
        hub.check_local_target()
    else:
        hub.check_endpoint()
    settings = get_settings()
    folder = write_codes_dataset(load_catalog(), Path(args.out))
    repo_id = settings.repo_id(CODES_REPO_NAME)
    sha = hub.publish_folder(folder, repo_id, "dataset", version=args.version, target=args.target)
    logger.info(
        "published %s at %s (%s): %s", repo_id, args.version or "main", sha[:10], hub.repo_url(repo_id, "dataset")
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `codes` and its subcommands."""
    parser = subparsers.add_parser("codes", help="look up, export and publish the ICD-10-CM catalogue")
    codes = parser.add_subparsers(dest="codes_command", required=True, metavar="ACTION")

    show = codes.add_parser("show", help="one code: title, hierarchy, labels per language")
    show.add_argument("code")
    show.set_defaults(func=_show)

    search = codes.add_parser(
        "search", help="exact code, code prefix, or words of a title (any language); exit code 1 when nothing matches"
    )
    search.add_argument("query")
    search.add_argument(
        "--limit",
        type=int_option("--limit", AT_LEAST_ONE),
        default=20,
        help="codes shown at most (default %(default)s)",
    )
    search.set_defaults(func=_search)

    stats = codes.add_parser("stats", help="per-language label coverage and the join report")
    stats.set_defaults(func=_stats)

    export = codes.add_parser("export", help="write the catalogue dataset folder (parquet + card)")
    export.add_argument("--out", default=str(get_settings().home / "build" / "cie10-codes"))
    export.set_defaults(func=_export)

    publish = codes.add_parser("publish", help="export and publish <org>/cie10-codes")
    publish.add_argument("--version", default=None, help="tag, e.g. v1.0")
    publish.add_argument("--target", choices=("local", "hub"), default="local")
    publish.add_argument("--out", default=str(get_settings().home / "build" / "cie10-codes"))
    publish.set_defaults(func=_publish)
