"""``orderflow schemas export DIR``: one JSON Schema file per record type of the topics."""

from __future__ import annotations

from pathlib import Path

import faust
import orjson
import pytest
from click.testing import CliRunner

from orderflow import schemas
from orderflow.cli import main
from orderflow.schemas.jsonschema import json_schema


def _export(directory: Path) -> list[str]:
    result = CliRunner().invoke(main, ["schemas", "export", str(directory)])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_writes_one_schema_per_record_with_the_required_fields(tmp_path: Path) -> None:
    out = tmp_path / "schemas" / "json"  # created with its parents

    printed = _export(out)

    assert sorted(path.name for path in out.iterdir()) == sorted(
        f"{record.__name__}.v1.json" for record in schemas.ALL_RECORDS
    )
    assert sorted(printed) == sorted(str(path) for path in out.iterdir())
    for record in schemas.ALL_RECORDS:
        schema = orjson.loads((out / f"{record.__name__}.v1.json").read_bytes())
        options = record._options
        without_default = [name for name in options.fields if name not in options.defaults]
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"urn:orderflow:schema:orderflow.{record.__name__}:v1"
        assert schema["title"] == record.__name__
        assert schema["required"] == [*without_default, "__faust"]
        assert set(schema["properties"]) == {*options.fields, "__faust"}
        assert schema["properties"]["__faust"]["properties"]["ns"] == {"const": options.namespace}
        assert schema["properties"]["schema_version"] == {"type": "integer", "default": 1}
        assert schema["additionalProperties"] is True


def test_nested_records_docstrings_and_types() -> None:
    schema = json_schema(schemas.PlaceOrder)
    assert "description" not in schema  # PlaceOrder has no docstring of its own
    assert schema["properties"]["lines"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/OrderLine"},
    }
    assert schema["$defs"]["OrderLine"]["required"] == ["sku", "quantity", "unit_price"]
    assert json_schema(schemas.DeadlineExpired)["properties"]["deadline"] == {"type": "number"}
    assert json_schema(schemas.StockLevelChanged)["description"].startswith("On inventory.events")


def test_the_files_are_the_same_on_every_export(tmp_path: Path) -> None:
    _export(tmp_path / "a")
    _export(tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_a_field_type_without_a_json_schema_is_refused() -> None:
    class Unsupported(faust.Record, namespace="tests.schema_export.Unsupported"):
        attributes: dict[int, str]  # JSON object keys are text

    with pytest.raises(TypeError, match=r"Unsupported\.attributes"):
        json_schema(Unsupported)
