"""Issue 17: `dpsynth schema template DATA` — a skeleton from the column names and the kinds the
user confirms; it reads no value, and leaves every category and bound to be declared."""

from __future__ import annotations

import tomllib

import pytest
from typer.testing import CliRunner

from dpsynth.cli import app
from dpsynth.schema import Schema, SchemaError

SECRET = "Zanzibar-4417"


def test_template_reads_names_only_and_leaves_facts_to_declare(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text(f"age,job,flag,seen\n{SECRET},{SECRET},1,2013-01-01\n")
    out = tmp_path / "schema.toml"
    res = CliRunner().invoke(app, ["schema", "template", str(data), "--kind", "age=integer", "--kind", "job=categorical",
                                   "--kind", "flag=boolean", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert SECRET not in text and "2013" not in text  # no value was read
    cols = tomllib.loads(text)["columns"]
    assert [c["name"] for c in cols] == ["age", "job", "flag", "seen"]
    assert [c["kind"] for c in cols] == ["integer", "categorical", "boolean", ""]  # "seen" not confirmed
    with pytest.raises(SchemaError, match="seen"):  # an unconfirmed kind cannot be used as it is
        Schema.load(out)
    # Confirmed kinds only: loadable, and incomplete until the officer declares the facts.
    again = CliRunner().invoke(app, ["schema", "template", str(data), "--kind", "age=integer",
                                     "--kind", "job=categorical", "--kind", "flag=boolean", "--kind", "seen=datetime"])
    assert again.exit_code == 0
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(again.output)
    assert set(Schema.load(fixed).incomplete()) == {"age", "job", "seen"}  # to declare, or to learn privately
    bad = CliRunner().invoke(app, ["schema", "template", str(data), "--kind", "age=number"])
    assert bad.exit_code == 1 and "KIND is one of" in bad.output
    assert CliRunner().invoke(app, ["schema", "template", str(data), "--out", str(out)]).exit_code == 1  # no overwrite


def test_a_schema_can_reference_a_public_code_list():
    """Issue 17: schema files for common public code lists that a schema can reference."""
    from dpsynth.schema import Column

    text = '[[columns]]\nname = "state"\nkind = "categorical"\ncategories = "codelist:us-states"\n\n' \
           '[[columns]]\nname = "day"\nkind = "ordinal"\ncategories = "codelist:weekdays"\n'
    schema = Schema.from_dict(tomllib.loads(text))
    states = schema.column("state").categories
    assert len(states) == 51 and {"CA", "DC", "WY"} <= set(states)  # 50 states and DC
    assert schema.column("day").categories[0] == "Monday" and len(schema.column("day").categories) == 7
    assert Schema.from_dict(schema.to_dict()) == schema  # saved expanded: the list it used
    with pytest.raises(SchemaError, match="unknown code list 'planets'; known: countries, countries-alpha3, months, us-states"):
        Column("x", "categorical", categories="codelist:planets")
    with pytest.raises(SchemaError, match="must be a list"):
        Column("x", "categorical", categories="red")
