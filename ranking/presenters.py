"""Page shaping for the ranking pages: a stored report → what a template shows.

Nothing here queries more than the few rows a page needs that are not in the stored report (the
project's own fields, the researcher's note), and nothing writes.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotator.models import DEMOGRAPHIC_FIELDS, Project, demographic_field_label
from ranking import charts, selectors
from ranking.core.pairwise import BOOTSTRAP_RESAMPLES, MIN_GROUP_JUDGMENTS, MIN_GROUP_RATERS
from ranking.core.ratings import OPINION_SORTS
from ranking.models import DEFAULT_ALPHA, AgreementReport

DATASHEET_DATETIMES = {"collection_period": ("first_judgment", "last_judgment"),
                       "instruction_versions": ("created_at", "in_force_from", "in_force_until", "first_shown_at"),
                       "consent_versions": ("created_at",)}


def revive(value):
    return parse_datetime(value) if isinstance(value, str) else value


DATASHEET_METHODS = [
    "Pair categories: item A preferred, item B preferred, tie (A is the pair's first item, not a screen side).",
    "Fleiss' kappa: pairs with at least m judgments, m the most common count among pairs with ≥ 2; "
    "the first m judgments of each by submission time. Krippendorff's alpha (nominal) uses every judgment.",
    f"95% intervals for agreement: percentile bootstrap over pairs ({BOOTSTRAP_RESAMPLES} resamples, seed 0).",
    "Group difference: likelihood-ratio test of one Bradley–Terry model for all groups against one per group, "
    "decided judgments only, items compared within every group; df = (groups − 1)·(common items − 1); "
    f"fits with a weak N(0, {1 / DEFAULT_ALPHA:g}) prior. Groups with fewer than {MIN_GROUP_RATERS} raters or "
    f"{MIN_GROUP_JUDGMENTS} judgments are reported as too small and left out of the test, as are "
    "'not answered' and 'prefer not to say'.",
    "Repeats (a pair re-shown to the same rater, sides swapped) are consistency probes: left out of every "
    "pairwise statistic and of fits; intra-rater consistency is the share of repeats answered with the same "
    "winning item (or a tie both times), Wilson 95% interval.",
    "Raters appear only in aggregate; no identities or external participant ids are included.",
]


def likert_images_summary(rich_images: dict | None) -> list[dict]:
    """Per Likert dimension: images scored, how many with ≥ 2 ratings have a spread (max − min) of 0, 1
    and ≥ 2, and the five most controversial images."""
    out = []
    for d in (rich_images or {}).get("likert_images", []):
        op = d["opinions"]["controversy"]
        out.append({"name": d["name"], "label": d["label"], "n_images": op["n_images"],
                    "spread_counts": d["spread_counts"],
                    "most_controversial": [{k: r[k] for k in ("item_id", "item", "n", "text", "mean", "spread")}
                                           for r in op["rows"][:5]]})
    return out


def agreement_view(*, result: dict, field: str = "expertise", sort: str = "controversy") -> dict:
    """What the agreement page shows of a computed report, for one group field and one sort order."""
    if field not in DEMOGRAPHIC_FIELDS:
        field = "expertise"
    if sort not in OPINION_SORTS:
        sort = "controversy"
    return {
        "pairwise": result["pairwise"],
        "intra_rater": result.get("intra_rater"),  # None in reports stored before repeats existed
        "opinions": result["opinions"][sort],
        "quality": result["quality"],
        "groups": result["groups"][field],
        "rich": result["rich"],
        "heatmaps": [dict(h, chart=charts.heatmap_chart(histogram=h["histogram"]))
                     for h in (result.get("rich_images") or {}).get("heatmaps", [])],
        "likert_images": [{"name": d["name"], "label": d["label"], "opinions": _with_glyphs(d["opinions"][sort])}
                          for d in (result.get("rich_images") or {}).get("likert_images", [])],
        "fields": [(f, demographic_field_label(f)) for f in DEMOGRAPHIC_FIELDS],
    }


def datasheet_view(*, result: dict, project: Project, generated_at=None, report: dict | None = None) -> dict:
    """The datasheet as plain data from a computed report (the page, the Markdown and the JSON download).

    The project's name and description and the researcher's known limitations are read now; everything
    else is the report's, as of its cut-off. ``report`` (id, cut-offs) is included when given.
    """
    sheet = {
        "project": {"name": project.name, "slug": project.slug, "description": project.description},
        "generated_at": generated_at or timezone.now(),
        "collection_period": {k: revive(v) for k, v in result["collection_period"].items()},
        "counts": result["counts"],
        "demographics": result["demographics"],
        "instruction_versions": [{k: revive(v) if k in DATASHEET_DATETIMES["instruction_versions"] else v
                                  for k, v in row.items()} for row in result["instruction_versions"]],
        "consent_versions": [{k: revive(v) if k in DATASHEET_DATETIMES["consent_versions"] else v
                              for k, v in row.items()} for row in result["consent_versions"]],
        "agreement": {"pairwise": result["pairwise"], "rich": result["rich"],
                      "intra_rater": result.get("intra_rater"),
                      "heatmaps": (result.get("rich_images") or {}).get("heatmaps", []),
                      "likert_images": likert_images_summary(result.get("rich_images"))},
        "group_differences": {
            field: {"label": g["field_label"],
                    "groups": [{k: grp[k] for k in ("label", "n_raters", "n_judgments", "too_small",
                                                    "mean_majority_share", "alpha_nominal")} for grp in g["groups"]],
                    "lr_test": g["lr_test"]}
            for field in DEMOGRAPHIC_FIELDS if (g := result["groups"].get(field)) is not None
        },  # in field order: a PostgreSQL jsonb column does not keep key order
        "limitations": selectors.datasheet_limitations(project=project),
        "methods": DATASHEET_METHODS,
    }
    if report is not None:
        sheet["report"] = report
    return sheet




def _with_glyphs(opinions: dict) -> dict:
    return {**opinions, "rows": [dict(r, glyph=charts.likert_glyph(r["counts"])) for r in opinions["rows"]]}


def report_meta(*, report: AgreementReport) -> dict:
    """What the JSON datasheet says about the report it was rendered from."""
    return {"id": report.pk, "cutoff_judgment_id": report.cutoff_judgment_id,
            "cutoff_annotation_id": report.cutoff_annotation_id, "computed_at": report.finished_at}


def agreement_page(*, report: AgreementReport, field: str, sort: str) -> dict:
    """The agreement page's context from a stored report: the view, and the ICC chart."""
    view = agreement_view(result=report.result, field=field, sort=sort)
    return {"report": view, "icc_chart": charts.icc_chart(likert=view["rich"]["likert"])}


def datasheet(*, project: Project, report: AgreementReport) -> dict:
    """The datasheet of a stored report (page, Markdown and JSON)."""
    return datasheet_view(result=report.result, project=project, generated_at=report.finished_at,
                          report=report_meta(report=report))
