"""Chart template tags: the templates place what :mod:`ranking.charts` computes."""

from django import template

from ranking import charts

register = template.Library()


@register.inclusion_tag("charts/bars.html")
def bar_chart(rows, title: str, x_label: str = "", y_label: str = "", width: int = 560, height: int = 180):
    """A vertical SVG bar chart of ``rows`` = [(label, value), ...] (geometry: :func:`ranking.charts.bar_chart`)."""
    return charts.bar_chart(rows, title=title, x_label=x_label, y_label=y_label, width=width, height=height)
