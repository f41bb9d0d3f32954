"""Arguments checked against a tool's input schema before the call, every violation listed
in one line. Messages name the argument's path and the rule from the schema, never the
value given (argument values may be secrets)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import SchemaError, UnknownType
from jsonschema.protocols import Validator
from referencing.exceptions import Unresolvable

MAX_LISTED = 20
_CACHED = 1024
# Checked validators by schema object (a tool keeps its schema object while it is unchanged);
# the schema is kept beside its validator so a reused id() is never mistaken for it.
_validators: dict[int, tuple[dict[str, Any], Validator | None]] = {}


def _validator(schema: dict[str, Any]) -> Validator | None:
    cached = _validators.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
        checked: Validator | None = cls(schema)
    except SchemaError:
        checked = None
    if len(_validators) >= _CACHED:
        _validators.clear()
    _validators[id(schema)] = (schema, checked)
    return checked


def violations(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Every way `arguments` break `schema`, one short phrase each (at most MAX_LISTED, then
    a count of the rest); [] when they fit or the schema itself is unusable (the tool then
    judges its arguments itself)."""
    validator = _validator(schema)
    if validator is None:
        return []
    try:
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.path)))
    except (SchemaError, UnknownType, Unresolvable):
        return []
    phrases = [_phrase(error) for error in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        phrases.append(f"and {len(errors) - MAX_LISTED} more")
    return phrases


def _phrase(error: ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    place = f"'{where}'" if where else "arguments"
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        # The message names the missing property (a schema name, never a value).
        return f"{error.message.split(' is a required')[0]} is required"
    if rule == "type":
        return f"{place} must be {_either(expected)}"
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(key for key in error.instance if key not in allowed)
        names = ", ".join(repr(key) for key in extra)
        return f"unexpected {names} in {place}" if where else f"unexpected argument {names}"
    if rule in ("enum", "const"):
        return f"{place} must be {'one of ' if rule == 'enum' else ''}{expected!r}"
    return f"{place} breaks '{rule}' ({_short(expected)})"


def _either(expected: Any) -> str:
    return " or ".join(expected) if isinstance(expected, list) else str(expected)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
