"""Page shaping for the ranking pages: a stored report or stored scores → what a template shows.

Nothing here queries more than the few rows a page needs that are not in the stored report (the
project's own fields, the researcher's note), and nothing writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
from django.contrib import messages
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotator.models import DEMOGRAPHIC_FIELDS, Project, demographic_field_label
from ranking import charts, loaders, selectors
from ranking.core.pairwise import BOOTSTRAP_RESAMPLES, MIN_GROUP_JUDGMENTS, MIN_GROUP_RATERS
from ranking.core.ratings import OPINION_SORTS
from ranking.metric_plugins import get_plugin_class
from ranking.models import DEFAULT_ALPHA, AgreementReport, MetricKind

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
        "rater_flags": result.get("rater_flags"),  # None in reports stored before quality flags existed
        "exclusions": result.get("exclusions"),
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
        "exclusions": result.get("exclusions"),  # None in reports stored before exclusions existed
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
    """The datasheet of a stored report (page, Markdown and JSON), with the latest calibration report's
    summary: which metrics agree with these raters, how much."""
    sheet = datasheet_view(result=report.result, project=project, generated_at=report.finished_at,
                           report=report_meta(report=report))
    calibration = selectors.calibration_report_latest(project=project)
    sheet["metric_agreement"] = None if calibration is None else {
        "report": calibration.pk, "computed_at": calibration.finished_at,
        "n_judgments": calibration.result.get("n_judgments"),
        "ceiling": (calibration.result.get("ceiling") or {}).get("accuracy"),
        "metrics": calibration_summary(calibration.result),
    }
    fit = selectors.fit_latest(project=project)
    ranking = (fit.summary.get("model_ranking") if fit else None) or None
    sheet["model_ranking"] = None if ranking is None else {
        "fit": fit.pk, "computed_at": fit.finished_at, "n_comparisons": ranking["n_comparisons"],
        "n_prompts": ranking["n_prompts"], "rows": ranking["plain"]["rows"],
        "style": {r["model"]: r for r in (ranking.get("style") or {}).get("rows", [])},
    }
    return sheet


# ------------------------------------------------------------------------------------------------
# Automated metrics
# ------------------------------------------------------------------------------------------------

HISTOGRAM_BINS = 24
SCORES_CSV_COLUMNS = ("item_id", "sha256", "file", "source_model", "metric", "version", "value", "run", "source",
                      "scored_at")


def metric_distribution(values: np.ndarray) -> dict | None:
    """Summary statistics and the histogram geometry of one metric's newest values (None when there are none)."""
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if hi > lo:
        counts, edges = np.histogram(values, bins=min(HISTOGRAM_BINS, max(5, int(np.sqrt(values.size)))))
        chart = charts.histogram(counts=counts, edges=edges)
    else:  # every image has the same value: one bar in the middle, labelled with it
        d = abs(lo) * 0.1 or 0.5
        chart = charts.histogram(counts=[0, values.size, 0], edges=[lo - 1.5 * d, lo - 0.5 * d, lo + 0.5 * d,
                                                                    lo + 1.5 * d], tick_values=[lo])
    return {"n": int(values.size), "min": lo, "max": hi, "mean": float(values.mean()),
            "median": float(np.median(values)), "chart": chart}


def plugin_rows(statuses) -> list[dict]:
    """The plugin list: every plugin, with whether the page can compute it and, if not, why."""
    rows = []
    for s in statuses:
        cls = get_plugin_class(s.name)
        why_not = ""
        if not s.available:
            why_not = s.reason
        elif s.kind == MetricKind.PAIR:
            why_not = "scores pairs of images; not computed per project"
        elif getattr(cls, "needs_reference", False):
            why_not = "needs a reference set of images, which PrefLab does not hold yet"
        rows.append({"status": s, "computable": not why_not, "why_not": why_not, "missing": list(s.missing),
                     "expected": list(s.expected)})
    return rows


def metrics_page(*, project: Project) -> dict:
    """The project metrics page: each per-image metric with coverage, distribution, source, version and
    newest run; set-level metrics per source model; the runs; every plugin and whether it can run."""
    n_items = project.items.count()
    coverage = selectors.metric_coverage(project=project)
    runs = selectors.metric_runs_by_metric(project=project)
    rows, set_metrics = [], []
    for metric in selectors.project_metrics(project=project):
        metric_runs = runs.get(metric.pk, [])
        row = {"metric": metric, "scope": "project" if metric.project_id else "built-in",
               "newest_run": metric_runs[0] if metric_runs else None, "n_runs": len(metric_runs),
               "sources": sorted({r.source for r in metric_runs})}
        if metric.kind == MetricKind.SET:
            set_metrics.append(row)
            continue
        n_scored = coverage.get(metric.pk, 0)
        values = loaders.metric_values(project=project, metric=metric).values
        rows.append({**row, "n_scored": n_scored, "coverage": n_scored / n_items if n_items else 0.0,
                     "distribution": metric_distribution(values)})
    by_metric: dict[int, list] = {}
    for score in selectors.metric_set_scores_newest(project=project):
        by_metric.setdefault(score.metric_id, []).append(score)
    set_names = sorted({s.set_name for scores in by_metric.values() for s in scores})
    set_table = [{**row, "cells": [next((s for s in by_metric.get(row["metric"].pk, []) if s.set_name == name), None)
                                   for name in set_names]}
                 for row in set_metrics]
    return {"n_items": n_items, "metric_rows": rows, "set_names": set_names, "set_table": set_table,
            "plugins": plugin_rows(selectors.metric_plugins()),
            "pending_runs": list(selectors.metric_runs_pending(project=project)),
            "runs": list(selectors.metric_runs(project=project))}


def metric_scores_csv(*, project: Project) -> Iterator[str]:
    """Every image's newest score of every metric as CSV text, a chunk of rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SCORES_CSV_COLUMNS)
    for k, row in enumerate(selectors.metric_scores_export_rows(project=project), start=1):
        *head, scored_at = row
        writer.writerow([*head, scored_at.isoformat()])
        if k % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# ------------------------------------------------------------------------------------------------
# Calibration reports
# ------------------------------------------------------------------------------------------------

CALIBRATION_SORTS = {
    "accuracy": "held-out accuracy",
    "ceiling": "share of the human ceiling",
    "tau": "Kendall τ_b with the selected signal",
    "ece": "calibration error (ECE)",
    "name": "name",
}


def _gate_label(key: str, labels: dict | None) -> str:
    rule = "top half" if key == "bt" else ("mean ≥ 3" if key.startswith("likert:") else "yes-rate ≥ ½")
    return f"{(labels or {}).get(key, key)}: {rule}"


def _calibration_row(metric: dict, signal: str, labels: dict | None = None) -> dict:
    pw = metric["pairwise"]
    sig = (metric.get("signals") or {}).get(signal) or {}
    prob = pw.get("probability") or {}
    return {
        "name": metric["name"], "version": metric["version"], "dimension": metric["dimension"],
        "direction": metric["direction"], "n_items": metric["n_items"], "n_judgments": pw.get("n_judgments", 0),
        "value": pw.get("headline"), "low": (pw.get("ci") or [None, None])[0],
        "high": (pw.get("ci") or [None, None])[1], "accuracy": pw.get("accuracy") or {},
        "tie": pw.get("tie"), "ceiling_share": pw.get("ceiling_share"), "cluster": metric.get("cluster"),
        "tau": sig.get("tau_b"), "tau_n": sig.get("n_items"), "ece": prob.get("ece"), "brier": prob.get("brier"),
        "reason": pw.get("reason"), "gate": metric.get("gate") or {},
        "gates": [{"key": k, "label": _gate_label(k, labels), **v} for k, v in (metric.get("gates") or {}).items()],
        "signals": [{"key": k, "label": (labels or {}).get(k, k), **v} for k, v in (metric.get("signals") or {}).items()],
        "groups": pw.get("groups") or {},
        "reliability": charts.reliability_chart(**{k: prob["reliability"][k] for k in ("predicted", "observed", "count")})
        if prob.get("reliability") else None,
        "gate_chart": charts.gate_chart(threshold=metric["gate"]["curve"]["threshold"],
                                        precision=metric["gate"]["curve"]["precision"],
                                        recall=metric["gate"]["curve"]["recall"], chosen=metric["gate"]["threshold"])
        if (metric.get("gate") or {}).get("curve") else None,
        "drift": pw.get("drift"),
        "drift_chart": charts.drift_chart(accuracy=pw["drift"]["accuracy"], low=pw["drift"]["low"],
                                          high=pw["drift"]["high"], labels=pw["drift"]["windows"])
        if (pw.get("drift") or {}).get("accuracy") else None,
    }


def calibration_page(*, report, sort: str = "accuracy", signal: str = "bt") -> dict:
    """The calibration page's context from a stored report: the sortable table, the forest plot and
    every metric's detail charts."""
    result = report.result
    signals = result.get("signals") or []
    if signal not in signals:
        signal = signals[0] if signals else ""
    if sort not in CALIBRATION_SORTS:
        sort = "accuracy"
    rows = [_calibration_row(m, signal, result.get("signal_labels")) for m in result.get("metrics", [])]

    def key(r):
        missing = 1e9
        return {
            "accuracy": (-(r["value"] if r["value"] is not None else -missing), r["name"]),
            "ceiling": (-(r["ceiling_share"] if r["ceiling_share"] is not None else -missing), r["name"]),
            "tau": (-(r["tau"] if r["tau"] is not None else -missing), r["name"]),
            "ece": ((r["ece"] if r["ece"] is not None else missing), r["name"]),
            "name": (0, r["name"]),
        }[sort]

    rows.sort(key=key)
    ceiling = (result.get("ceiling") or {}).get("accuracy")
    return {
        "result": result, "rows": rows, "sort": sort, "sorts": CALIBRATION_SORTS.items(), "signal": signal,
        "signal_options": [(s, (result.get("signal_labels") or {}).get(s, s)) for s in signals],
        "forest": charts.accuracy_forest([r for r in rows if r["value"] is not None], ceiling=ceiling),
        "ceiling": result.get("ceiling") or {}, "clusters": result.get("clusters") or {},
    }


def calibration_summary(result: dict) -> list[dict]:
    """Which metrics agree with these raters, how much: one line per metric for the datasheet."""
    rows = [_calibration_row(m, "bt") for m in result.get("metrics", [])]
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0), r["name"]))
    return [{k: r[k] for k in ("name", "version", "dimension", "direction", "n_judgments", "value", "low", "high",
                                "ceiling_share", "cluster", "tau", "ece", "reason")} for r in rows]


def job_outcome_message(*, noun: str, job) -> tuple[int, str]:
    """(messages level, text) telling a researcher what became of a job they asked for: computed in the
    request, failed (with why), or queued for a worker."""
    if job.status == "succeeded":
        return messages.SUCCESS, f"{noun} #{job.pk} computed."
    if job.status == "failed":
        return messages.ERROR, f"{noun} #{job.pk} failed: {job.error}"
    return messages.SUCCESS, f"{noun} #{job.pk} queued."


# ------------------------------------------------------------------------------------------------
# Calibration rounds and gates
# ------------------------------------------------------------------------------------------------


def round_result_page(*, result: dict, project: Project) -> dict:
    """A round result shaped for its page: the consensus as a forest plot (best at the top), the metrics'
    agreement as another, the gates with the images whose decisions the humans contradict."""
    items = result.get("items", [])
    consensus = charts.forest_plot([SimpleNamespace(rank=r["place"], name=r["name"] or f"image {r['id']}",
                                                    strength=r["strength"], ci_low=r["ci_low"], ci_high=r["ci_high"])
                                    for r in items])
    metric_rows = sorted(result.get("metrics", []), key=lambda m: (-m["accuracy"], m["name"]))
    forest = charts.accuracy_forest([{"name": m["name"], "value": m["accuracy"], "low": m["accuracy_ci_low"],
                                      "high": m["accuracy_ci_high"]} for m in metric_rows], ceiling=None)
    names = {r["id"]: r["name"] or f"image {r['id']}" for r in items}
    gates = []
    for g in result.get("gates", []):
        row = dict(g)
        row["false_pass_names"] = [(i, names.get(i, str(i))) for i in g.get("false_pass", [])]
        row["false_fail_names"] = [(i, names.get(i, str(i))) for i in g.get("false_fail", [])]
        gates.append(row)
    return {"consensus": consensus, "items": items, "metric_rows": metric_rows, "metric_forest": forest,
            "gate_rows": gates, "alarm": result.get("alarm") or {}, "skipped_metrics": result.get("skipped_metrics", []),
            "human_good": set(result.get("human_good", []))}


def drift_rows(drift: list[dict]) -> list[dict]:
    """Each metric's per-round agreement as a chart, with its pooled estimate and the alarm's state."""
    rows = []
    for entry in sorted(drift, key=lambda e: e["name"]):
        rounds = entry["rounds"]
        rows.append({**entry, "chart": charts.drift_chart(
            accuracy=[r["accuracy"] for r in rounds], low=[r["ci_low"] for r in rounds],
            high=[r["ci_high"] for r in rounds], labels=[f"round {r['number']}" for r in rounds],
            ticks=[r["number"] for r in rounds])})
    return rows


def gate_rows(gates, decisions: dict[int, list]) -> list[dict]:
    """Each gate with how many current images pass, fail or have no score (active gates only count)."""
    active = [g for g in gates if g.is_active]
    index = {g.pk: k for k, g in enumerate(active)}
    rows = []
    for gate in gates:
        k = index.get(gate.pk)
        passed = failed = 0
        if k is not None:
            for entries in decisions.values():
                verdict = entries[k][1]
                passed += verdict is True
                failed += verdict is False
        rows.append({"gate": gate, "passed": passed, "failed": failed})
    return rows


# ------------------------------------------------------------------------------------------------
# Model-level leaderboard
# ------------------------------------------------------------------------------------------------


def model_leaderboard(summary: dict) -> dict | None:
    """A fit's model-level results for the leaderboard: one row per source model (with the style-controlled
    strength beside the plain one), a forest plot, and the win-rate matrix as coloured cells."""
    ranking = summary.get("model_ranking")
    if not ranking:
        return None
    style = {r["model"]: r for r in (ranking.get("style") or {}).get("rows", [])}
    rows = [{**r, "style": style.get(r["model"])} for r in ranking["plain"]["rows"]]
    plot = charts.forest_plot([SimpleNamespace(rank=r["rank"], name=r["model"], strength=r["strength"],
                                               ci_low=r["ci_low"], ci_high=r["ci_high"]) for r in rows])
    names = ranking["models"]
    order = [names.index(r["model"]) for r in rows]
    rates = ranking["win_rates"]
    matrix = []
    for i in order:
        cells = []
        for j in order:
            observed, predicted = rates["observed"][i][j], rates["predicted"][i][j]
            cells.append({"observed": observed, "predicted": predicted, "count": rates["counts"][i][j],
                          "colour": charts.diverging_colour(observed if observed is not None else predicted)
                          if i != j else None})
        matrix.append({"model": names[i], "cells": cells})
    return {"rows": rows, "plot": plot, "matrix": matrix, "columns": [names[j] for j in order],
            "ranking": ranking, "style_coef": (ranking.get("style") or {}).get("coef", []),
            "categories": ranking.get("categories", {})}


def model_leaderboard_csv(summary: dict) -> Iterator[str]:
    """The model leaderboard as CSV rows (plain and style-controlled strengths, every interval)."""
    view = model_leaderboard(summary)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["rank", "rank_low", "rank_high", "model", "strength", "se", "se_sandwich", "ci_low", "ci_high",
                     "boot_ci_low", "boot_ci_high", "style_strength", "style_ci_low", "style_ci_high"])
    for r in (view or {}).get("rows", []):
        s = r["style"] or {}
        writer.writerow([r["rank"], r["rank_low"], r["rank_high"], r["model"], r["strength"], r["se"],
                         r["se_sandwich"], r["ci_low"], r["ci_high"], r["boot_ci_low"], r["boot_ci_high"],
                         s.get("strength"), s.get("ci_low"), s.get("ci_high")])
    yield buf.getvalue()
