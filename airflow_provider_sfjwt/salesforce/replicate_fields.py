"""Which fields a replication reads, decided from describe, and how a schema drifts between runs.

A lake copy must read the same columns whichever API a run uses, or files of one object would
disagree on their schema from hour to hour. So the choice is made once, from describe, with the
strictest reader in mind:

* compound fields (``BillingAddress``, geolocations) are replaced by their components
  (``BillingStreet``, ``BillingCity``, ...): Bulk API 2.0 refuses compound fields, and the
  components carry the same data as plain, typed columns;
* base64 fields (attachment bodies) are left out whenever Bulk may be used: Bulk refuses them,
  and a file body does not belong in a table anyway. Name ``api="rest"`` to keep them;
* formula (calculated) fields follow the formula policy (:data:`FORMULA_POLICIES`);
* ``Id``, ``IsDeleted`` and the cursor field are always read: merging needs them.

A schema snapshot is ``{field name: Salesforce type}``; :func:`schema_changes` compares two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORMULA_POLICIES",
    "FieldPlan",
    "SchemaChanges",
    "plan_fields",
    "schema_changes",
]

FORMULA_POLICIES = ("include", "exclude", "refresh")
"""What incremental runs do with formula fields, whose values change without SystemModstamp:
``include`` reads them as of extraction (they can go stale until the row changes again),
``exclude`` never reads them, ``refresh`` leaves them out of incremental runs and reads them for
every row in a separate ``formulas`` run on its own schedule."""

COMPOUND_TYPES = frozenset({"address", "location"})
ALWAYS = ("Id", "IsDeleted")


@dataclass(frozen=True)
class FieldPlan:
    """The columns a run reads, their Salesforce types, and what was left out and why."""

    columns: list[str]
    types: dict[str, str]
    excluded: dict[str, str] = field(default_factory=dict)
    formulas: list[str] = field(default_factory=list)

    def select(self, sobject: str) -> str:
        """``SELECT <columns> FROM <sobject>``, to which a ``WHERE`` may be appended."""
        return f"SELECT {', '.join(self.columns)} FROM {sobject}"


def _by_name(describe: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    fields = describe.get("fields")
    if not isinstance(fields, list) or not fields:
        raise ValueError(f"describe of {describe.get('name', '?')} lists no fields")
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            out[f["name"].lower()] = f
    return out


def _components(fields: Mapping[str, dict[str, Any]], compound: str) -> list[str]:
    return [
        f["name"]
        for f in fields.values()
        if (f.get("compoundFieldName") or "").lower() == compound.lower()
        and (f.get("type") or "") not in COMPOUND_TYPES
    ]


def _is_compound(f: Mapping[str, Any], fields: Mapping[str, dict[str, Any]]) -> bool:
    return (f.get("type") or "") in COMPOUND_TYPES or bool(_components(fields, f["name"]))


def plan_fields(
    sobject: str,
    describe: Mapping[str, Any],
    fields: Sequence[str] | None = None,
    *,
    cursor_field: str | None = "SystemModstamp",
    bulk_possible: bool = True,
    formula_fields: str = "include",
    formulas_only: bool = False,
) -> FieldPlan:
    """The columns to read for ``sobject``: ``fields`` as named, or every field when ``None``.

    ``formulas_only`` plans a formula refresh: ``Id`` and every formula field (or the formula
    fields among ``fields``). Raises ``ValueError`` for a field describe does not know, or for
    a cursor field the object lacks.
    """
    if formula_fields not in FORMULA_POLICIES:
        raise ValueError(
            f"formula_fields must be one of {', '.join(FORMULA_POLICIES)}, not {formula_fields!r}"
        )
    known = _by_name(describe)
    if cursor_field and cursor_field.lower() not in known:
        raise ValueError(
            f"{sobject} has no field {cursor_field!r} to read changes by; pick another "
            "cursor_field (LastModifiedDate, CreatedDate) or use mode='full'"
        )
    if fields is None:
        wanted = [f["name"] for f in known.values()]
    else:
        missing = [name for name in fields if name.lower() not in known]
        if missing:
            raise ValueError(
                f"{sobject} has no field {', '.join(map(repr, missing))} (describe lists "
                f"{len(known)} fields; names are API names such as Name or Custom__c)"
            )
        wanted = [known[name.lower()]["name"] for name in fields]
    excluded: dict[str, str] = {}
    expanded: list[str] = []
    for name in wanted:
        f = known[name.lower()]
        if _is_compound(f, known):
            parts = _components(known, name)
            expanded.extend(parts)
            excluded[name] = (
                f"compound field: read as its components ({', '.join(parts)})"
                if parts
                else "compound field without components in describe"
            )
        else:
            expanded.append(name)
    formulas = [n for n in expanded if known[n.lower()].get("calculated")]
    if formulas_only:
        return _plan(known, ["Id", *formulas], excluded, formulas)
    columns: list[str] = []
    for name in expanded:
        f = known[name.lower()]
        if f.get("type") == "base64" and bulk_possible:
            excluded[name] = "base64 field: Bulk API refuses it (use api='rest' to read it)"
        elif name in formulas and formula_fields != "include":
            excluded[name] = f"formula field (formula_fields={formula_fields!r})"
        else:
            columns.append(name)
    required = [
        known[n.lower()]["name"] for n in (*ALWAYS, cursor_field) if n and n.lower() in known
    ]
    return _plan(known, [*required, *columns], excluded, formulas)


def _plan(
    known: Mapping[str, dict[str, Any]],
    columns: Iterable[str],
    excluded: dict[str, str],
    formulas: list[str],
) -> FieldPlan:
    unique: list[str] = []
    seen: set[str] = set()
    for name in columns:  # SOQL refuses a field selected twice
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    types = {name: str(known[name.lower()].get("type") or "string") for name in unique}
    return FieldPlan(unique, types, excluded, formulas)


@dataclass(frozen=True)
class SchemaChanges:
    """Fields added, removed and retyped between two snapshots (``{name: Salesforce type}``)."""

    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    retyped: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": dict(self.added),
            "removed": dict(self.removed),
            "retyped": {k: list(v) for k, v in self.retyped.items()},
        }

    def __str__(self) -> str:
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{k} ({v})" for k, v in self.added.items()))
        if self.removed:
            parts.append("removed " + ", ".join(f"{k} ({v})" for k, v in self.removed.items()))
        if self.retyped:
            parts.append(
                "retyped " + ", ".join(f"{k} ({a} -> {b})" for k, (a, b) in self.retyped.items())
            )
        return "; ".join(parts) or "no changes"


def schema_changes(old: Mapping[str, str] | None, new: Mapping[str, str]) -> SchemaChanges:
    """What changed from ``old`` to ``new``; nothing when there is no previous snapshot."""
    if old is None:
        return SchemaChanges()
    old_l = {k.lower(): (k, v) for k, v in old.items()}
    new_l = {k.lower(): (k, v) for k, v in new.items()}
    return SchemaChanges(
        added={k: v for low, (k, v) in new_l.items() if low not in old_l},
        removed={k: v for low, (k, v) in old_l.items() if low not in new_l},
        retyped={
            k: (old_l[low][1], v)
            for low, (k, v) in new_l.items()
            if low in old_l and old_l[low][1] != v
        },
    )
