from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from shared.uscc import USCC


class M(BaseModel):
    uscc: USCC


def test_valid_uscc_is_upper_cased() -> None:
    assert M(uscc=" 91370200163562681g ").uscc == "91370200163562681G"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91370200163562681X", "check digit"),
        ("9137020016356268", "at least 18"),
        ("91370200163562681GG", "at most 18"),
    ],
)
def test_bad_uscc_names_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        M(uscc=value)
    assert reason in str(info.value)
