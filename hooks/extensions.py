"""Jinja extension that gives ``copier.yml`` the filters defined in ``hooks/naming.py``.

Loaded through ``copier_template_extensions.TemplateExtensionLoader``, which imports this file
by path; the directory is put on ``sys.path`` so that ``naming`` imports the same way in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2.ext import Extension

if TYPE_CHECKING:
    from jinja2 import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))

import naming


class NamingFilters(Extension):
    """Register the naming and validation filters."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            {
                "slugify": naming.slugify,
                "package_from_slug": naming.package_from_slug,
                "project_name_error": naming.project_name_error,
                "slug_error": naming.slug_error,
                "package_name_error": naming.package_name_error,
                "email_error": naming.email_error,
            },
        )
