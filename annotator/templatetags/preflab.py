"""Template helpers: safe Markdown and small inline charts."""

import markdown as md
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

_ALLOWED_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "h1", "h2", "h3", "h4", "blockquote", "code", "pre",
                 "hr", "a", "table", "thead", "tbody", "tr", "th", "td"}


@register.filter
def markdown_safe(text: str) -> str:
    """Markdown rendered to HTML and sanitised (no script, no event handlers, no raw HTML)."""
    html = md.markdown(text or "", extensions=["tables", "sane_lists"], output_format="html")
    cleaned = nh3.clean(html, tags=_ALLOWED_TAGS, attributes={"a": {"href", "title"}},
                        url_schemes={"http", "https", "mailto"})
    return mark_safe(cleaned)  # sanitised above


@register.filter
def percent(value: float) -> str:
    return f"{100 * (value or 0):.0f}%"


@register.inclusion_tag("charts/bars.html")
def bar_chart(rows, title: str, x_label: str = "", y_label: str = "", width: int = 560, height: int = 180):
    """A simple SVG bar chart of ``rows`` = [(label, value), ...]."""
    rows = list(rows)
    peak = max((v for _, v in rows), default=0) or 1
    pad_left, pad_bottom, pad_top = 40, 28, 10
    inner_w, inner_h = width - pad_left - 10, height - pad_bottom - pad_top
    n = max(len(rows), 1)
    bar_w = inner_w / n
    bars = [
        {
            "x": pad_left + i * bar_w + bar_w * 0.1,
            "w": max(bar_w * 0.8, 1),
            "h": inner_h * v / peak,
            "y": pad_top + inner_h - inner_h * v / peak,
            "label": label,
            "value": v,
            "show_label": n <= 24 or i % max(n // 12, 1) == 0,
            "cx": pad_left + i * bar_w + bar_w / 2,
        }
        for i, (label, v) in enumerate(rows)
    ]
    return {"bars": bars, "title": title, "width": width, "height": height, "peak": peak, "x_label": x_label,
            "y_label": y_label, "axis_y": pad_top + inner_h, "pad_left": pad_left, "pad_top": pad_top,
            "label_y": pad_top + inner_h + 16}
