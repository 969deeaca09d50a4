"""The Jinja extension exposes the naming rules to copier.yml."""

from __future__ import annotations

from jinja2 import Environment

from extensions import NamingFilters


def test_filters_render_in_jinja() -> None:
    env = Environment(extensions=[NamingFilters], autoescape=True)
    rendered = env.from_string("{{ name | slugify }} {{ name | slugify | package_from_slug }}")
    assert rendered.render(name="My RAG App") == "my-rag-app my_rag_app"
    assert env.from_string("{{ 'class' | package_name_error }}").render() != ""
    assert env.from_string("{{ 'ok' | package_name_error }}").render() == ""
