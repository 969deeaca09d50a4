"""Naming and validation rules for the template's answers.

Kept as plain functions so they are unit tested without Copier, and exposed to Jinja by
``hooks/extensions.py``. Each ``*_error`` function returns an empty string for a valid answer
or a message that says what to type instead: Copier shows that message and asks again.
"""

from __future__ import annotations

import keyword
import re
import sys

_SLUG = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Names that are not stdlib modules but would still shadow something every project imports.
_RESERVED = frozenset({"test", "tests", "src", "site", "setup", "pip", "uv"})


def slugify(name: str) -> str:
    """Turn a human name into a kebab-case slug: ``My RAG App`` becomes ``my-rag-app``."""
    slug = _NON_ALNUM.sub("-", name.strip().lower()).strip("-")
    return slug.lstrip("0123456789-") or "project"


def package_from_slug(slug: str) -> str:
    """The import name that matches a slug: ``my-rag-app`` becomes ``my_rag_app``."""
    return slug.replace("-", "_")


def project_name_error(name: str) -> str:
    """Refuse a name that cannot become a slug."""
    if not name.strip():
        return "The project name cannot be empty. Type a name such as: My RAG App"
    if not re.search(r"[A-Za-z]", name):
        return "The project name needs at least one letter. Type a name such as: My RAG App"
    return ""


def slug_error(slug: str) -> str:
    """Refuse a slug that is not kebab-case (it names the folder, distribution and CLI)."""
    if _SLUG.match(slug):
        return ""
    suggestion = slugify(slug)
    return (
        f"'{slug}' is not a valid slug: use lowercase letters, digits and single hyphens, "
        f"starting with a letter (no spaces, capitals, '..' or '/'). Try: {suggestion}"
    )


def package_name_error(name: str) -> str:
    """Refuse an import name Python cannot import, or one that would shadow another module."""
    suggestion = f"{_NON_ALNUM.sub('_', name.lower()).strip('_') or 'app'}_app"
    if not name.isidentifier() or not name.isascii():
        if name[:1].isdigit():
            return (
                f"'{name}' starts with a digit, which Python cannot import. "
                f"Start with a letter, e.g.: {suggestion.lstrip('0123456789_')}"
            )
        return (
            f"'{name}' is not a Python identifier: use lowercase letters, digits and "
            f"underscores, starting with a letter. Try: {suggestion}"
        )
    if name != name.lower():
        return f"'{name}' has capitals; package names are lowercase (PEP 8). Try: {name.lower()}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"'{name}' is a Python keyword and cannot be imported. Try: {suggestion}"
    if name in sys.stdlib_module_names or name in _RESERVED:
        return f"'{name}' would shadow a module of the same name. Try: {suggestion}"
    return ""


def email_error(email: str) -> str:
    """Refuse an address that is obviously not one (the project metadata carries it)."""
    if _EMAIL.match(email.strip()):
        return ""
    return f"'{email}' is not an e-mail address. Type one such as: jane@example.com"
