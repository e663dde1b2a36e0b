"""The docs keep up with the code: every setting, command, format, widget, ui key and route is documented."""

from __future__ import annotations

import json
import re

import click
import pytest

from server import ROOT, create_app
from server.cli import main
from server.config import SETTINGS
from server.definitions.files import SCHEMAS_DIR
from server.definitions.ui import WIDGETS
from server.formats import CHECKS
from server.validation import FORMAT_MESSAGES, MESSAGES

DOCS = ROOT / "docs"
FLASK_BUILTINS = {"run", "shell", "routes"}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def commands(group: click.Group, prefix: tuple[str, ...] = ()):
    """Yield the full name of every command under a click group, subgroups walked."""
    for name, command in sorted(group.commands.items()):
        if not prefix and name in FLASK_BUILTINS:
            continue
        if isinstance(command, click.Group):
            yield from commands(command, prefix + (name,))
        else:
            yield " ".join(prefix + (name,))


def normalise(path: str) -> str:
    """Write a route with its parameters as `{}`: `/forms/<key>` and `/forms/{key}` both become `/forms/{}`."""
    return re.sub(r"<(?:[^:>]+:)?[^>]+>|\{[^}]+\}", "{}", path)


@pytest.fixture(scope="module")
def url_map(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("docs-app")
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": "sqlite:///" + str(tmp_path / "x.db"),
        "SECRET_KEY": "x",
        "INSTANCE_PATH": str(tmp_path),
    })
    return app.url_map


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_documented(setting):
    assert f"`{setting.env}`" in read("settings.md"), f"{setting.env} is missing from docs/settings.md"


@pytest.mark.parametrize("name", list(commands(main)))
def test_every_command_is_documented(name):
    assert f"gridflow {name}" in read("cli.md"), f"`gridflow {name}` is missing from docs/cli.md"


def test_command_walk_finds_the_nested_commands():
    names = set(commands(main))
    assert {"init-db", "load", "check", "demo", "serve", "user create", "token create"} <= names
    assert not names & FLASK_BUILTINS


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_format_is_documented(name):
    assert f"`{name}`" in read("forms.md"), f"format {name} is missing from docs/forms.md"


@pytest.mark.parametrize("name", sorted(WIDGETS))
def test_every_widget_is_documented(name):
    assert f"`{name}`" in read("forms.md"), f"widget {name} is missing from docs/forms.md"


def ui_keys() -> list[str]:
    meta = json.loads((SCHEMAS_DIR / "form.schema.json").read_text(encoding="utf-8"))
    return sorted(meta["$defs"]["ui"]["properties"])


@pytest.mark.parametrize("key", ui_keys())
def test_every_ui_key_is_documented(key):
    assert f"`{key}`" in read("forms.md"), f"ui key {key} is missing from docs/forms.md"


def top_level_keys() -> list[str]:
    meta = json.loads((SCHEMAS_DIR / "form.schema.json").read_text(encoding="utf-8"))
    return sorted(meta["properties"])


@pytest.mark.parametrize("key", top_level_keys())
def test_every_top_level_form_key_is_documented(key):
    assert f"| `{key}` |" in read("forms.md"), f"top-level key {key} is missing from the table in docs/forms.md"


TEMPLATES = sorted({**MESSAGES, **{f"format:{k}": v for k, v in FORMAT_MESSAGES.items()}}.items())


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda item: item[0])
def test_every_error_message_is_quoted_exactly(template):
    keyword, text = template
    assert text in read("forms.md"), f"message for {keyword} is not quoted exactly in docs/forms.md: {text}"


def node_types() -> list[str]:
    meta = json.loads((SCHEMAS_DIR / "flow.schema.json").read_text(encoding="utf-8"))
    return meta["$defs"]["node"]["properties"]["type"]["enum"]


@pytest.mark.parametrize("kind", node_types())
def test_every_flow_node_type_is_documented(kind):
    assert f"`{kind}`" in read("flows.md"), f"node type {kind} is missing from docs/flows.md"


def test_published_schemas_are_exact_copies():
    shipped = sorted(p.name for p in SCHEMAS_DIR.glob("*.json"))
    published = sorted(p.name for p in (DOCS / "schemas").glob("*.json"))
    assert published == shipped, "docs/schemas/ must hold exactly the meta-schemas the package ships"
    for name in shipped:
        assert (DOCS / "schemas" / name).read_bytes() == (SCHEMAS_DIR / name).read_bytes(), (
            f"docs/schemas/{name} differs from server/definitions/schemas/{name}: cp it again")


def documented_routes() -> set[tuple[str, str]]:
    """Return the routes that have their own section: a heading such as "## `GET /api/v1/forms`"."""
    pattern = re.compile(r"^#{2,4} `(" + "|".join(HTTP_METHODS) + r") (/[^\s`?]*)", re.MULTILINE)
    return {(method, normalise(path)) for method, path in pattern.findall(read("api.md"))}


def test_every_api_route_is_documented(url_map):
    documented = documented_routes()
    routes = [
        (method, normalise(rule.rule))
        for rule in url_map.iter_rules()
        if rule.rule.startswith("/api/v1") or rule.rule == "/healthz"
        for method in sorted(rule.methods or ())
        if method in HTTP_METHODS
    ]
    assert routes, "no /api/v1 routes found in the url_map"
    missing = sorted({f"{method} {path}" for method, path in routes} - {f"{m} {p}" for m, p in documented})
    assert not missing, "routes without a section in docs/api.md: " + ", ".join(missing)


def test_route_normalisation_matches_both_spellings():
    assert normalise("/api/v1/submissions/<sid>") == normalise("/api/v1/submissions/{id}")
    assert normalise("/api/v1/grids/<string:code>") == "/api/v1/grids/{}"
