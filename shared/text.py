"""Text accepted at the edge: no NUL in any string of a request.

PostgreSQL text cannot hold NUL (`\\u0000`): a string with one would reach the database and fail
there as a 500 (and fail a whole batch). Every request model derives from `Input`, whose one
validator refuses NUL in every string field, nested lists and dicts included, with a 422 that names
the field; a CSV or NDJSON row validated into such a model becomes that row's problem, so the batch
stores its good rows. `Text` is the same rule for a single annotated string (a query parameter).
Path and query strings are checked for control characters before routing (shared.service_app).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

NUL = "\x00"


def _refuse_nul(value: Any) -> Any:
    """The value, unchanged, if no string in it holds NUL (walks lists, tuples, sets and dicts)."""
    if isinstance(value, str):
        if NUL in value:
            raise PydanticCustomError("nul_character", "must not contain the NUL character (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _refuse_nul(item)
    return value


Text = Annotated[str, AfterValidator(_refuse_nul)]


class Input(BaseModel):
    """The base of every request body model: unknown fields refused, and no NUL in any string.

    The check runs after each field's own validation, so a nested `Input` model has already named
    its own field (`nonconforming_items[0].item`); other containers (a dict of changes) are walked.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _refuse_nul(value)
