"""Identifiers every service validates the same way."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Path, Query
from pydantic import AfterValidator, BeforeValidator, Field
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError

from shared.errors import InvalidUscc, field_error

#: The form of a USCC (GB 32100-2015: no I, O, S, V, Z; six digits of the division code). The check
#: digit is not a pattern: a code of this form with a wrong one is refused with 422 `invalid-uscc`.
USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
_SCHEMA = {"pattern": USCC_PATTERN}


#: GB 32100-2015's alphabet (no I, O, S, V, Z) and the check digit's weights, as python-stdnum has them.
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: For each of the first 17 positions, each character's weighted value modulo 31, computed once: the
#: check of a code is then 17 dictionary lookups and a sum (a few µs; python-stdnum's general
#: clean-up and index searches cost ten times more, the measure in bench/ and issue 18).
_TERMS = tuple({c: (v * w) % 31 for v, c in enumerate(_ALPHABET)} for w in _WEIGHTS)
_DIGITS = frozenset("0123456789")


def _is_plain_valid(value: str) -> bool:
    """A code already in its compact upper-case form (python-stdnum's `compact` leaves it as it is),
    with the division code in digits and a right check digit. False means "not sure": the caller
    asks python-stdnum, which also says why a code is wrong."""
    if len(value) != 18:
        return False
    try:
        total = sum(map(dict.__getitem__, _TERMS, value))  # KeyError: a character outside the alphabet
    except KeyError:
        return False
    return value[17] == _ALPHABET[-total % 31] and _DIGITS.issuperset(value[:8])


def _validate_with_stdnum(value: str) -> str:
    try:
        return str(_uscc.validate(value))
    except InvalidLength:
        raise ValueError("a USCC has 18 characters") from None
    except InvalidChecksum:
        raise ValueError("the USCC check digit is wrong") from None
    except (InvalidFormat, InvalidComponent):
        raise ValueError("the USCC uses characters outside GB 32100-2015's alphabet") from None
    except ValidationError as exc:
        raise ValueError(f"not a valid USCC: {exc}") from None


def check_uscc(value: str) -> str:
    """`validate_uscc` without its cache: the precomputed check for a code in its usual form, and
    python-stdnum for anything else (lower case, separators, errors and their reasons)."""
    return value if _is_plain_valid(value) else _validate_with_stdnum(value)


@lru_cache(maxsize=1 << 18)
def validate_uscc(value: str) -> str:
    """Check a Unified Social Credit Code (GB 32100-2015) and return it in upper case.

    The same answer as python-stdnum's `validate` (tests/unit/test_uscc_fast.py compares them on a
    million codes): length, alphabet, digits in the division code, the check digit. Cached: bulk
    files name the same enterprises again and again.
    """
    return check_uscc(value)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


#: A validated, upper-cased USCC for request models.
USCC = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=18,
        max_length=18,
        examples=["91370200163562681G"],
        description="统一社会信用代码 (GB 32100-2015)",
        json_schema_extra=_SCHEMA,
    ),
    AfterValidator(validate_uscc),
]


def parse_uscc(value: str, field: str = "uscc", where: str = "query") -> str:
    """A USCC from a path or query parameter, or the 422 `invalid-uscc` problem naming it."""
    try:
        return validate_uscc(value.strip())
    except ValueError as exc:
        raise InvalidUscc.of(value, str(exc), field, where) from None


def parse_usccs(values: Sequence[str], field: str) -> list[str]:
    """Every USCC of a list, or one 422 `invalid-uscc` problem naming each bad one by index."""
    errors, codes = [], []
    for i, raw in enumerate(values):
        try:
            codes.append(validate_uscc(raw.strip()))
        except ValueError as exc:
            errors.append(field_error(f"{field}[{i}]", "body", str(exc)))
    if errors:
        raise InvalidUscc(f"{len(errors)} USCCs are not valid", errors)
    return codes


_DESCRIPTION = "统一社会信用代码 (GB 32100-2015): 18 characters, the last a check digit"


async def _uscc_in_path(uscc: Annotated[str, Path(description=_DESCRIPTION, json_schema_extra=_SCHEMA)]) -> str:
    return parse_uscc(uscc, where="path")


async def _uscc_in_query(uscc: Annotated[str, Query(description=_DESCRIPTION, json_schema_extra=_SCHEMA)]) -> str:
    return parse_uscc(uscc)


async def _optional_uscc_in_query(
    uscc: Annotated[str | None, Query(description=_DESCRIPTION, json_schema_extra=_SCHEMA)] = None,
) -> str | None:
    return parse_uscc(uscc) if uscc else None


#: Route parameters named `uscc`, validated and upper-cased; a bad one is 422 `invalid-uscc`.
UsccPath = Annotated[str, Depends(_uscc_in_path)]
UsccQuery = Annotated[str, Depends(_uscc_in_query)]
OptionalUsccQuery = Annotated[str | None, Depends(_optional_uscc_in_query)]
