"""What describe says about the emulated objects: fields, their types and their metadata.

A field is metadata, as in a real org: its type and length decide which written values are
accepted, a picklist has a fixed value set (refused values on a restricted one), a formula field
is computed when read and never stored, and a compound address field is assembled from its
component fields. Clients read describe to type their output files, so every documented field
property is reported, with the value Salesforce gives for a field of that kind.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Store, Table

TEXT_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
)
NUMERIC_TYPES = frozenset({"int", "double", "currency", "percent"})
LONG_TEXT = 255  # a textarea longer than this is a Long Text Area: not filterable, not sortable

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}


class Row:
    """One record as a formula sees it: ``row["AnnualRevenue"]``, ``row["Account.Name"]``
    (one relationship hop), and ``row.today`` (the emulator's date, for ``TODAY()``)."""

    __slots__ = ("i", "store", "table", "today")

    def __init__(self, store: Store, table: Table, i: int, today: dt.date) -> None:
        self.store, self.table, self.i, self.today = store, table, i, today

    def __getitem__(self, path: str) -> Any:
        rel, _, name = path.rpartition(".")
        if not rel:
            f = self.table.field(name)
            return None if f is None else self.table.value(f, self.i, self.store, self.today)
        ref = self.table.relationship(rel)
        if ref is None or not ref.reference_to:
            return None
        parent = self.store.get(ref.reference_to)
        j = parent.index.get(self.table.cols[ref.name][self.i]) if parent is not None else None
        pf = parent.field(name) if parent is not None else None
        if j is None or pf is None or parent is None:
            return None
        return parent.value(pf, j, self.store, self.today)


Formula = Callable[[Row], Any]


@dataclass
class Field:
    """One field: what describe reports and what writes and queries are checked against.

    ``formula`` (with ``compute``) makes a calculated field, evaluated on read; ``components``
    makes a compound address field (JSON key -> component field name), assembled on read.
    """

    name: str
    type: str = "string"
    reference_to: str | None = None
    relationship_name: str | None = None
    nillable: bool = True
    external_id: bool = False
    unique: bool = False
    createable: bool = True
    updateable: bool = True
    required: bool = False
    length: int = 255
    label: str = ""
    precision: int = 0
    scale: int = 0
    digits: int = 0
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    name_field: bool = False
    formula: str | None = None
    compute: Formula | None = None
    compound: str | None = None
    components: tuple[tuple[str, str], ...] = ()
    id_lookup: bool = False

    @property
    def calculated(self) -> bool:
        return self.formula is not None

    @property
    def virtual(self) -> bool:
        """No stored column: computed (formula) or assembled (address) when read."""
        return self.formula is not None or self.type == "address"

    @property
    def long_text(self) -> bool:
        return self.type == "textarea" and self.length > LONG_TEXT

    @property
    def filterable(self) -> bool:
        return not self.long_text and self.type != "address"

    @property
    def sortable(self) -> bool:
        return self.filterable and self.type != "multipicklist"

    @property
    def groupable(self) -> bool:
        """GROUP BY takes text, picklist, id, boolean, date and int fields; not numbers with
        decimals, datetimes, text areas or formula fields."""
        grouped = {"string", "picklist", "email", "phone", "url", "id", "reference", "boolean"}
        return not self.calculated and self.type in grouped | {"date", "int", "combobox"}

    @property
    def aggregatable(self) -> bool:
        return self.filterable and self.type not in ("multipicklist", "textarea")

    def describe(self) -> dict[str, Any]:
        """The field's entry in ``/sobjects/{Object}/describe``."""
        text = self.type in TEXT_TYPES
        length = 18 if self.type in ("id", "reference") else (self.length if text else 0)
        if self.type in ("double", "currency", "percent"):
            precision, scale = self.precision or 18, self.scale
        else:
            precision, scale = 0, 0
        return {
            "aggregatable": self.aggregatable,
            "aiPredictionField": False,
            "autoNumber": False,
            "byteLength": length * 3 if text else length,
            "calculated": self.calculated,
            "calculatedFormula": self.formula,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.name.endswith("__c"),
            "defaultValue": False if self.type == "boolean" else self.default,
            "defaultValueFormula": None,
            "defaultedOnCreate": not self.createable or self.type == "boolean",
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": (self.digits or 9) if self.type == "int" else 0,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": "plaintextarea" if self.type == "textarea" else None,
            "filterable": self.filterable,
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.groupable,
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.external_id or self.id_lookup,
            "inlineHelpText": None,
            "label": field_label(self),
            "length": length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": False,
            "nillable": self.nillable,
            "permissionable": self.nillable and not self.calculated and self.createable,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "polymorphicForeignKey": False,
            "precision": precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": scale,
            "searchPrefilterable": False,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


def field_label(f: Field) -> str:
    """The label describe gives (and error messages use): set, or derived from the name."""
    return f.label or _label(f.name)


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base.replace("_", " ")).strip()


def system_fields() -> list[Field]:
    """Id, IsDeleted and the audit fields every object has (read-only, set by the org)."""

    def audit(name: str, kind: str, label: str) -> Field:
        return Field(name, kind, nillable=False, createable=False, updateable=False, label=label)

    return [
        replace(audit("Id", "id", "Record ID"), length=18),
        audit("IsDeleted", "boolean", "Deleted"),
        audit("CreatedDate", "datetime", "Created Date"),
        audit("LastModifiedDate", "datetime", "Last Modified Date"),
        audit("SystemModstamp", "datetime", "System Modstamp"),
    ]


def address_fields(prefix: str, label: str) -> list[Field]:
    """A compound address (``BillingAddress``) and its component fields, as on Account/Contact."""
    compound = f"{prefix}Address"
    parts = [
        ("street", Field(f"{prefix}Street", "textarea", length=255, label=f"{label} Street")),
        ("city", Field(f"{prefix}City", length=40, label=f"{label} City")),
        ("state", Field(f"{prefix}State", length=80, label=f"{label} State/Province")),
        ("postalCode", Field(f"{prefix}PostalCode", length=20, label=f"{label} Zip/Postal Code")),
        ("country", Field(f"{prefix}Country", length=80, label=f"{label} Country")),
        ("latitude", Field(f"{prefix}Latitude", "double", precision=18, scale=15)),
        ("longitude", Field(f"{prefix}Longitude", "double", precision=18, scale=15)),
        (
            "geocodeAccuracy",
            Field(
                f"{prefix}GeocodeAccuracy",
                "picklist",
                length=40,
                picklist=GEOCODE_ACCURACY,
                restricted=True,
            ),
        ),
    ]
    out = [replace(f, compound=compound) for _, f in parts]
    keys = tuple(sorted((key, f.name) for key, f in parts))
    out.append(
        Field(
            compound,
            "address",
            createable=False,
            updateable=False,
            label=f"{label} Address",
            components=keys,
        )
    )
    return out


def _owner() -> Field:
    return Field("OwnerId", "reference", "User", "Owner", nillable=False, label="Owner ID")


def _full_name() -> Field:
    """Contact and User ``Name``: first and last name joined, read-only."""
    return Field(
        "Name", createable=False, updateable=False, length=121, label="Full Name", name_field=True
    )


def _last_activity() -> Field:
    return Field(
        "LastActivityDate", "date", createable=False, updateable=False, label="Last Activity"
    )


def _external_id() -> Field:
    return Field("External_Id__c", external_id=True, unique=True, length=64, label="External Id")


def _days_since_activity(row: Row) -> Any:
    last = row["LastActivityDate"]
    return None if last is None else float((row.today - dt.date.fromisoformat(last)).days)


GEOCODE_ACCURACY = (
    "Address",
    "NearAddress",
    "Block",
    "Street",
    "ExtendedZip",
    "Zip",
    "Neighborhood",
    "City",
    "County",
    "State",
    "Unknown",
)
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Other",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
)
ACCOUNT_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
TIERS = ("Platinum", "Gold", "Silver", "Bronze")

STANDARD_SCHEMAS: dict[str, list[Field]] = {
    "User": [
        Field("Username", nillable=False, unique=True, required=True, length=80),
        _full_name(),
        Field("FirstName", length=40, label="First Name"),
        Field("LastName", nillable=False, required=True, length=80, label="Last Name"),
        Field("Email", "email", length=128),
        Field("IsActive", "boolean", nillable=False, label="Active"),
    ],
    "Account": [
        Field(
            "Name",
            nillable=False,
            required=True,
            label="Account Name",
            name_field=True,
            id_lookup=True,
        ),
        Field("AccountNumber", length=40, label="Account Number"),
        Field("Industry", "picklist", length=255, picklist=INDUSTRIES),
        Field("Type", "picklist", length=255, label="Account Type", picklist=ACCOUNT_TYPES),
        Field("AnnualRevenue", "currency", precision=18, scale=0, label="Annual Revenue"),
        Field("NumberOfEmployees", "int", digits=8, label="Employees"),
        Field("Phone", "phone", length=40, label="Account Phone"),
        *address_fields("Billing", "Billing"),
        Field("Description", "textarea", length=32000, label="Account Description"),
        _last_activity(),
        Field("Active__c", "boolean", nillable=False, label="Active"),
        Field("Tier__c", "picklist", length=255, label="Tier", picklist=TIERS, restricted=True),
        Field(
            "Days_Since_Last_Activity__c",
            "double",
            createable=False,
            updateable=False,
            precision=18,
            scale=0,
            label="Days Since Last Activity",
            formula="TODAY() - LastActivityDate",
            compute=_days_since_activity,
        ),
        _owner(),
        _external_id(),
    ],
    "Contact": [
        Field("FirstName", length=40, label="First Name"),
        Field("LastName", nillable=False, required=True, length=80, label="Last Name"),
        _full_name(),
        Field("Email", "email", length=80),
        Field("Phone", "phone", length=40, label="Business Phone"),
        Field("Title", length=128),
        Field("AccountId", "reference", "Account", "Account", label="Account ID"),
        *address_fields("Mailing", "Mailing"),
        Field("Birthdate", "date"),
        Field("HasOptedOutOfEmail", "boolean", nillable=False, label="Email Opt Out"),
        Field("Description", "textarea", length=32000, label="Contact Description"),
        _last_activity(),
        Field(
            "Account_Name__c",
            createable=False,
            updateable=False,
            length=1300,
            label="Account Name",
            formula="Account.Name",
            compute=lambda row: row["Account.Name"],
        ),
        _owner(),
        _external_id(),
    ],
}


def standard_fields(sobject: str) -> list[Field]:
    """Fresh copies of the fields a new table of ``sobject`` starts with (system fields first)."""
    return [*system_fields(), *(replace(f) for f in STANDARD_SCHEMAS.get(sobject, []))]
