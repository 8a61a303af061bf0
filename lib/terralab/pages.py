"""The HTML pages of the reports, from jinja2 templates shipped with the package (autoescaped).

The templates live in ``terralab/templates/*.j2`` (pages, the style sheet, the sorting script) and are read
with :mod:`importlib.resources`, so they load from an installed wheel as from a checkout. Every value put into
a template is escaped unless it is already HTML (:class:`markupsafe.Markup`, e.g. a table rendered by another
template).

>>> from terralab import pages
>>> print(pages.render("error_banner.html.j2", "anchor", what="bad <band>"))  # doctest: +ELLIPSIS
<span id="papermill-error-cell" ...>Execution stopped here: bad &lt;band&gt;</span>
>>> pages.is_number(0.5), pages.is_number(float("nan")), pages.is_number(True)
(True, False, False)
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

__all__ = ["is_number", "markup", "render", "source", "template"]

TEMPLATES = "templates"


def is_number(value: Any) -> bool:
    """True for a finite int or float (numpy floats are floats); False for bool, NaN, ±inf, anything else.

    A NaN or infinite value is shown as text, never compared, starred as best or right-aligned as a number.

    >>> [is_number(v) for v in (3, 2.5, float("inf"), None, "1")]
    [True, True, False, False, False]
    """
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def markup(html: str) -> Markup:
    """Mark ``html`` (built by a template or this package) as HTML, so a template puts it in unescaped."""
    from markupsafe import Markup

    return Markup(html)


def source(name: str) -> str:
    """The text of the template ``templates/<name>``, for a jinja2 environment of its own (nbconvert's)."""
    from importlib.resources import files

    return files("terralab").joinpath(TEMPLATES, name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.tests["number"] = is_number
    return env


def template(name: str) -> jinja2.Template:
    """The template ``templates/<name>`` of the package."""
    return _environment().get_template(name)


def render(name: str, macro: str | None = None, /, **context: Any) -> str:
    """Render the template ``name`` with ``context``; with ``macro``, only that macro, given ``context``."""
    page = template(name)
    if macro is None:
        return page.render(**context)
    return str(getattr(page.module, macro)(**context))
