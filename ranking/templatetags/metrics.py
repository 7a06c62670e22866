"""Metric template tags: pages outside the ranking app (the annotator's item page) show an image's
metric scores through this tag, without importing the ranking app's reads."""

from django import template

from ranking import selectors

register = template.Library()


@register.inclusion_tag("ranking/_item_metric_scores.html")
def item_metric_scores(item):
    """Every metric score of one image: the newest per metric, with the values of earlier runs."""
    return {"groups": selectors.item_metric_scores(item=item), "item": item}


@register.inclusion_tag("ranking/_item_gate_decisions.html")
def item_gate_decisions(item):
    """The image's pass/fail under each of its project's active metric gates."""
    gates, decisions = selectors.gate_decisions(project=item.project, item_ids=[item.pk])
    entries = decisions.get(item.pk, [(None, None)] * len(gates))
    return {"rows": [{"gate": g, "score": score, "passed": passed} for g, (score, passed) in zip(gates, entries)]}
