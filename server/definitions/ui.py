"""The ui vocabulary: widget names we render, including react-jsonschema-form's own."""

from __future__ import annotations

# Our widgets (DESIGN.md "Widgets the renderer must support").
OWN_WIDGETS = frozenset({
    "text", "textarea", "number", "integer", "date", "datetime", "time", "select", "radio",
    "checkboxes", "yesno", "group", "repeat", "photo", "file", "geolocation", "grid", "phone",
    "idcard", "signature",
})

# react-jsonschema-form widget names, mapped to ours so existing uiSchemas render.
RJSF_ALIASES = {
    "TextWidget": "text",
    "TextareaWidget": "textarea",
    "SelectWidget": "select",
    "RadioWidget": "radio",
    "CheckboxWidget": "yesno",
    "CheckboxesWidget": "checkboxes",
    "checkbox": "yesno",
    "updown": "number",
    "range": "number",
    "alt-date": "date",
    "alt-datetime": "datetime",
    "email": "text",
    "uri": "text",
    "password": "text",
    "color": "text",
    "hidden": "text",
    "FileWidget": "file",
    "files": "file",
}

WIDGETS = OWN_WIDGETS | frozenset(RJSF_ALIASES)
