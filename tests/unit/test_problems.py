from __future__ import annotations

from shared.problems import field_path, validation_errors


def test_field_path_reads_as_the_client_wrote_it() -> None:
    assert field_path(("body", "uscc")) == "uscc"
    assert field_path(("body", "items", 2, "unit")) == "items[2].unit"
    assert field_path(("query", "as_of")) == "as_of"
    assert field_path(()) == "body"


def test_validation_errors_say_unknown_and_missing_plainly() -> None:
    errors = validation_errors(
        [
            {"loc": ("body", "x"), "msg": "Extra inputs are not permitted", "type": "extra_forbidden"},
            {"loc": ("body", "sector"), "msg": "Field required", "type": "missing"},
            {"loc": ("body", "uscc"), "msg": "Value error, the USCC check digit is wrong", "type": "value_error"},
        ]
    )
    assert errors == [
        {"field": "x", "in": "body", "reason": "unknown field", "code": "extra_forbidden"},
        {"field": "sector", "in": "body", "reason": "field required", "code": "missing"},
        {"field": "uscc", "in": "body", "reason": "the USCC check digit is wrong", "code": "value_error"},
    ]
