"""A parsed SOQL query checked against the emulated schema, as Salesforce checks it.

Binds every field path to its field (``INVALID_TYPE`` / ``INVALID_FIELD`` for unknown names),
then applies the rules that make Salesforce refuse an otherwise well-formed query: a field
selected twice, a literal of the wrong type (a date literal filters only date fields, a datetime
literal only datetime fields), a malformed Id literal, a field that cannot be filtered, sorted or
grouped, a non-aggregated field outside GROUP BY, an OFFSET above 2,000.
"""

from __future__ import annotations

from typing import Any

from .ids import normalize_id
from .schema import NUMERIC_TYPES, STANDARD_SCHEMAS
from .soql import Agg, NotEmulated, Query, Ref, SoqlError, located
from .store import Store, Table

MAX_OFFSET = 2000
FIELDS_LIMIT = 200


def _no_column(q: Query, ref: Ref, entity: str, name: str) -> SoqlError:
    return SoqlError(
        "INVALID_FIELD",
        located(
            q.soql,
            ref.pos,
            f"No such column '{name}' on entity '{entity}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        ),
    )


def _invalid_field(q: Query, pos: int, message: str) -> SoqlError:
    return SoqlError("INVALID_FIELD", located(q.soql, pos, message))


def resolve_table(store: Store, name: str) -> Table:
    """The table a query names; standard objects exist even when empty."""
    t = store.get(name)
    if t is None and any(k.lower() == name.lower() for k in STANDARD_SCHEMAS):
        t = store.table(name)
    if t is None:
        raise SoqlError(
            "INVALID_TYPE",
            f"\nFROM {name}\n     ^\nERROR at Row:1:Column:1\nsObject type '{name}' is not "
            "supported. If you are attempting to use a custom object, be sure to append the "
            "'__c' after the entity name. Please reference your WSDL or the describe call for "
            "the appropriate names.",
        )
    return t


def _resolve_ref(store: Store, q: Query, table: Table, ref: Ref) -> None:
    if len(ref.path) == 1 or (len(ref.path) == 2 and ref.path[0].lower() == table.name.lower()):
        name = ref.path[-1]
        f = table.field(name)
        if f is None:
            raise _no_column(q, ref, table.name, name)
        ref.field = f
        return
    if len(ref.path) != 2:
        raise NotEmulated(f"relationship paths deeper than one level ({'.'.join(ref.path)})")
    rel, name = ref.path
    f = table.relationship(rel)
    if f is None or not f.reference_to:
        raise _invalid_field(
            q,
            ref.pos,
            f"Didn't understand relationship '{rel}' in field path. If you are attempting to "
            "use a custom relationship, be sure to append the '__r' after the custom "
            "relationship name. Please reference your WSDL or the describe call for the "
            "appropriate names.",
        )
    parent = store.table(f.reference_to)
    pf = parent.field(name)
    if pf is None:
        raise _no_column(q, ref, parent.name, name)
    ref.field, ref.parent, ref.parent_field = f, parent, pf


def _expand_fields(q: Query, table: Table) -> None:
    """``FIELDS(ALL|STANDARD|CUSTOM)`` as the fields it stands for; a field selected twice
    (also through FIELDS()) is refused, as Salesforce does."""
    out: list[Ref] = []
    items: list[Ref | Agg] = []
    seen: dict[str, Ref] = {}

    def add(ref: Ref, name: str) -> None:
        key = name.lower()
        if key in seen:
            raise _invalid_field(q, ref.pos, f"duplicate field selected: {name}")
        seen[key] = ref
        out.append(ref)
        items.append(ref)

    for item in q.items:
        if isinstance(item, Agg):
            items.append(item)
            continue
        marker = item.path[0]
        if not marker.startswith("FIELDS("):
            add(item, item.name)
            continue
        which = marker[7:-1]
        if which != "STANDARD" and (q.limit is None or q.limit > FIELDS_LIMIT):
            raise SoqlError(
                "MALFORMED_QUERY",
                located(
                    q.soql,
                    item.pos,
                    f"The SOQL FIELDS function must have a LIMIT of at most {FIELDS_LIMIT}",
                ),
            )
        for f in table.fields.values():
            custom = f.name.endswith("__c")
            if (which == "CUSTOM" and not custom) or (which == "STANDARD" and custom):
                continue
            ref = Ref((f.name,), item.pos, field=f)
            add(ref, f.name)
    q.fields, q.items = out, items


def resolve(store: Store, q: Query) -> Query:
    """Bind every field path to the schema and check the query like Salesforce does."""
    table = resolve_table(store, q.sobject)
    q.table, q.store, q.sobject = table, store, table.name
    for ref in q.fields:
        if not ref.path[0].startswith("FIELDS("):
            _resolve_ref(store, q, table, ref)
    _expand_fields(q, table)
    for agg in q.aggregates:
        _resolve_agg(store, q, table, agg)
    for ref in q.group_by:
        _resolve_ref(store, q, table, ref)
        if not ref.target.groupable:
            raise _invalid_field(
                q, ref.pos, f"field '{ref.target.name}' can not be grouped in a query call"
            )
    for item, _, _ in q.order:
        if isinstance(item, Agg):
            _resolve_agg(store, q, table, item)
            continue
        _resolve_ref(store, q, table, item)
        if not item.target.sortable:
            raise _invalid_field(
                q, item.pos, f"field '{item.target.name}' can not be sorted in a query call"
            )
    q.where = _resolve_expr(store, q, table, q.where, having=False)
    if q.aggregate:
        _check_aggregate(store, q, table)
    if q.offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            located(q.soql, q.offset_pos, f"Maximum SOQL offset allowed is {MAX_OFFSET}"),
        )
    return q


def _resolve_agg(store: Store, q: Query, table: Table, agg: Agg) -> None:
    if agg.ref is None:
        return
    _resolve_ref(store, q, table, agg.ref)
    f = agg.ref.target
    numeric_only = agg.func in ("sum", "avg")
    if not f.aggregatable or (numeric_only and f.type not in NUMERIC_TYPES):
        raise _invalid_field(
            q,
            agg.pos,
            f"field {f.name} does not support aggregate operator {agg.func.upper()}",
        )


def _check_aggregate(store: Store, q: Query, table: Table) -> None:
    """Grouping rules, result keys (alias or exprN) and HAVING."""
    if q.count:
        raise SoqlError("MALFORMED_QUERY", "COUNT() cannot be used with GROUP BY")
    grouped = {ref.name.lower() for ref in q.group_by}
    for ref in q.fields:
        if ref.name.lower() not in grouped:
            raise SoqlError(
                "MALFORMED_QUERY",
                located(q.soql, ref.pos, f"Field must be grouped or aggregated: {ref.name}"),
            )
    if q.limit is not None and not q.group_by:
        raise SoqlError(
            "MALFORMED_QUERY",
            "A query with an aggregate function and a LIMIT clause must have a GROUP BY clause",
        )
    n = 0
    keys: set[str] = set()
    for item in q.items:
        if isinstance(item, Agg):
            if item.alias is None:
                item.key = f"expr{n}"
                n += 1
            else:
                item.key = item.alias
        else:
            item_key = item.target.name
            keys.add(item_key.lower())
            continue
        if item.key.lower() in keys:
            raise SoqlError(
                "MALFORMED_QUERY", located(q.soql, item.pos, f"duplicate alias: {item.key}")
            )
        keys.add(item.key.lower())
    for item, _, _ in q.order:
        if isinstance(item, Ref) and item.name.lower() not in grouped:
            raise SoqlError(
                "MALFORMED_QUERY",
                located(
                    q.soql, item.pos, f"Ordered field must be grouped or aggregated: {item.name}"
                ),
            )
    q.having = _resolve_expr(store, q, table, q.having, having=True)


def _resolve_expr(store: Store, q: Query, table: Table, e: Any, having: bool) -> Any:
    """``e`` with every path bound and every literal checked (Id literals made 18 long)."""
    if e is None:
        return None
    if e[0] in ("and", "or"):
        left_e = _resolve_expr(store, q, table, e[1], having)
        return (e[0], left_e, _resolve_expr(store, q, table, e[2], having))
    if e[0] == "not":
        return ("not", _resolve_expr(store, q, table, e[1], having))
    left = e[2] if e[0] == "cmp" else e[1]
    if isinstance(left, Agg):
        _resolve_agg(store, q, table, left)
        counted = left.func in ("count", "count_distinct") or left.ref is None
        ftype = "int" if counted or left.ref is None else left.ref.target.type
        name, pos = left.text, left.pos
    else:
        _resolve_ref(store, q, table, left)
        f = left.target
        if having and left.name.lower() not in {r.name.lower() for r in q.group_by}:
            raise SoqlError(
                "MALFORMED_QUERY",
                located(q.soql, left.pos, f"Field must be grouped or aggregated: {left.name}"),
            )
        if not f.filterable:
            raise _invalid_field(
                q, left.pos, f"field '{f.name}' can not be filtered in a query call"
            )
        ftype, name, pos = f.type, left.path[-1], left.pos
    if e[0] == "like" and ftype in ("id", "reference"):
        raise SoqlError(
            "INVALID_QUERY_FILTER_OPERATOR", located(q.soql, pos, "invalid operator on id field")
        )
    if e[0] in ("in", "notin"):
        return (e[0], left, [_check_literal(q, pos, name, ftype, lit) for lit in e[2]])
    if e[0] == "cmp":
        return ("cmp", e[1], left, _check_literal(q, pos, name, ftype, e[3]))
    return ("like", left, _check_literal(q, pos, name, ftype, e[2]))


def _type_error(q: Query, pos: int, name: str, kind: str, quoted: bool) -> SoqlError:
    enclosed = "be enclosed in quotes" if quoted else "not be enclosed in quotes"
    return _invalid_field(
        q,
        pos,
        f"value of filter criterion for field '{name}' must be of type {kind} and should "
        + enclosed,
    )


def _check_literal(q: Query, pos: int, name: str, ftype: str, lit: tuple[str, Any]) -> Any:
    """The literal, checked against the field type (an Id literal comes back 18 characters)."""
    kind = lit[0]
    if kind == "null":
        return lit
    if ftype in NUMERIC_TYPES:
        if kind != "number":
            raise _type_error(q, pos, name, "integer" if ftype == "int" else "double", False)
    elif ftype == "boolean":
        if kind != "bool":
            raise _type_error(q, pos, name, "boolean", False)
    elif ftype == "date":
        if kind not in ("date", "datekw"):
            raise _type_error(q, pos, name, "date", False)
    elif ftype == "datetime":
        if kind not in ("datetime", "datekw"):
            raise _type_error(q, pos, name, "dateTime", False)
    elif kind != "string":
        raise _type_error(q, pos, name, "string", True)
    elif ftype in ("id", "reference"):
        rid = normalize_id(lit[1])
        if rid is None:
            raise SoqlError(
                "INVALID_QUERY_FILTER_OPERATOR", located(q.soql, pos, f"invalid ID field: {lit[1]}")
            )
        return ("string", rid)
    return lit
