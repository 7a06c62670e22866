"""Metric template tags: pages outside the ranking app (the annotator's item page) show an image's
metric scores through this tag, without importing the ranking app's reads."""

from django import template

from ranking import selectors

register = template.Library()


@register.inclusion_tag("ranking/_item_metric_scores.html")
def item_metric_scores(item):
    """Every metric score of one image: the newest per metric, with the values of earlier runs."""
    return {"groups": selectors.item_metric_scores(item=item), "item": item}
