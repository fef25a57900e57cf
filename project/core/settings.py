"""The typed settings of the current app, and their reference page."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from config import (
    DECLARATIONS,
    ENVIRONMENTS,
    MIN_SECRET_BYTES,
    REQUIRED,
    Declaration,
    Settings,
)

SETTINGS_KEY = "warden.settings"

INTRO = """\
# Configuration

Generated from the declarations in `config.py` by `make docs`; do not edit by hand.

Every setting is an environment variable (12-factor). In development a `.env` file in the
project root is read as well (see `.env.example`): only when the real environment's
`APP_ENV` is unset or `development`, with the real environment's values winning over the
file's, and never to set `APP_ENV` itself (a `.env` holding `APP_ENV` stops the start).
An empty value counts as unset. Booleans accept `1/true/yes/on` and `0/false/no/off`.

All settings are checked in one pass before anything starts: the app, gunicorn, the worker
and every `flask` command exit non-zero with one message naming every bad or missing
setting, one line each:

```
warden: configuration error:
  SECRET_KEY: required in production
  BCRYPT_ROUNDS: must be between 4 and 31, got 3
```

Under `APP_ENV=testing`, `DATABASE_URL` and `REDIS_URL` are read from `TEST_DATABASE_URL`
and `TEST_REDIS_URL`.
"""


def current_settings(app: Flask | None = None) -> Settings:
    """The settings the factory built ``app`` (default: the current app) with."""
    settings: Settings = (app or current_app).extensions[SETTINGS_KEY]
    return settings


def configuration_markdown() -> str:
    """docs/configuration.md: a table per group of the declared settings."""
    groups: dict[str, list[tuple[str, Declaration]]] = {}
    for name, declaration in DECLARATIONS.items():
        groups.setdefault(declaration.group, []).append((name, declaration))
    lines = [INTRO]
    for group, declarations in groups.items():
        lines += [f"## {group}", "", "| name | type | default | bounds | meaning |"]
        lines.append("|---|---|---|---|---|")
        for name, declaration in declarations:
            cells = (
                f"`{name}`",
                str(getattr(declaration.parser, "label", "string")),
                _defaults(declaration),
                _bounds(declaration),
                declaration.meaning,
            )
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _defaults(declaration: Declaration) -> str:
    text = declaration.shown or _shown(declaration.default)
    for environment in ENVIRONMENTS:
        if environment in declaration.by_environment:
            value = declaration.by_environment[environment]
            shown = _shown(value)
            if value is REQUIRED and declaration.required_unless:
                shown += f" unless `{declaration.required_unless}` is set"
            text += f"; {environment}: {shown}"
    return text


def _shown(value: Any) -> str:
    if value is REQUIRED:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ((), ""):
        return "empty"
    return f"`{value}`"


def _bounds(declaration: Declaration) -> str:
    options = declaration.options
    parts = []
    if options.get("choices"):
        parts.append(", ".join(f"`{choice}`" for choice in options["choices"]))
    if options.get("minimum") is not None:
        parts.append(f"≥ {options['minimum']}")
    if options.get("maximum") is not None:
        parts.append(f"≤ {options['maximum']}")
    if declaration.secret and REQUIRED in declaration.by_environment.values():
        parts.append(f"production: ≥ {MIN_SECRET_BYTES} bytes, not the placeholder")
    return ", ".join(parts)
