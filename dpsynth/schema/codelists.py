"""Public code lists a schema can reference: ``categories = "codelist:NAME"``.

They are public facts (standards), so naming one spends nothing.  The reference is
expanded when the schema is read: a saved schema lists the categories it used.
"""

from __future__ import annotations

__all__ = ["CODELISTS", "codelist"]

PREFIX = "codelist:"

CODELISTS: dict[str, tuple[str, ...]] = {
    # The 50 US states and the District of Columbia: USPS two-letter codes.
    "us-states": tuple("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH "
                       "NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()),
    "yes-no": ("no", "yes"),
    # ISO 8601 order (Monday first), for ordinal columns.
    "weekdays": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "months": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"),
}


def codelist(reference: str) -> tuple[str, ...] | None:
    """The categories of ``"codelist:NAME"``, or None when `reference` is not such a reference;
    KeyError naming the known lists for an unknown NAME."""
    if not isinstance(reference, str) or not reference.startswith(PREFIX):
        return None
    name = reference[len(PREFIX):]
    if name not in CODELISTS:
        raise KeyError(f"unknown code list {name!r}; known: {', '.join(sorted(CODELISTS))}")
    return CODELISTS[name]
