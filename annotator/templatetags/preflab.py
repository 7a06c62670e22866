"""Template helpers: safe Markdown and percentages (charts are in ``ranking.templatetags.charts``)."""

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


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (None when absent)."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def duration_s(seconds) -> str:
    """Seconds as a short human duration: 4.2 s, 42 s, 3 min 5 s, 2 h 10 min."""
    if seconds is None:
        return "—"
    if float(seconds) < 10:
        return f"{float(seconds):.1f} s"
    total = round(float(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
