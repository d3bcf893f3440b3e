"""Identifiers every service validates the same way."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError


@lru_cache(maxsize=1 << 18)
def validate_uscc(value: str) -> str:
    """Check a Unified Social Credit Code (GB 32100-2015) and return it in upper case.

    python-stdnum checks the length, alphabet, region segment and both check digits. Cached:
    bulk files name the same enterprises again and again, and the check costs more than the rest
    of a row's validation.
    """
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


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


#: A validated, upper-cased USCC for request models.
USCC = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=18, max_length=18, examples=["91370200163562681G"], description="统一社会信用代码 (GB 32100-2015)"
    ),
    AfterValidator(validate_uscc),
]
