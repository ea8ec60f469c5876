"""What a client sends to place an order, validated at the door, and what it gets back."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "CAD": 2, "CHF": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "JPY": 0,
    "NOK": 2, "PLN": 2, "SEK": 2, "USD": 2,
}
"""The ISO 4217 currencies the shop takes, with their decimal places."""

OrderStatus = Literal["Submitted", "Completed", "Canceled"]


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid", frozen=True)


def plain_text(value: str) -> str:
    """`value` if it holds no control characters (NUL, escapes, newlines: text a
    database may refuse or a terminal may obey) and is not blank; ValueError otherwise."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, AfterValidator(plain_text)]
"""A string without control characters, not blank."""


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


class OrderLineRequest(_Api):
    """One line: an article, how many, at what unit price."""

    sku: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Annotated[Decimal, Field(gt=0, max_digits=14, allow_inf_nan=False)]


class OrderRequest(_Api):
    """``POST /orders``: the order as the client states it. The amount must equal the
    sum of the lines, to the cent, in a currency the shop takes."""

    customer_id: Annotated[Text, Field(min_length=1, max_length=64)]
    currency: str
    lines: Annotated[list[OrderLineRequest], Field(min_length=1, max_length=100)]
    amount: Annotated[Decimal, Field(gt=0, max_digits=16, allow_inf_nan=False)]
    risk_flags: Annotated[list[Annotated[Text, Field(min_length=1, max_length=64)]],
                          Field(max_length=20)] = []

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"{value!r} is not an ISO 4217 currency the shop takes "
                             f"({', '.join(sorted(MINOR_UNITS))})")
        return value

    @field_validator("lines")
    @classmethod
    def _prices_fit_currency(cls, lines: list[OrderLineRequest], info: ValidationInfo
                             ) -> list[OrderLineRequest]:
        currency = info.data.get("currency")
        if currency is None:
            return lines
        places = MINOR_UNITS[currency]
        for number, line in enumerate(lines):
            if _decimals(line.unit_price) > places:
                raise ValueError(f"line {number}: unitPrice {line.unit_price} has more decimal "
                                 f"places than {currency} allows ({places})")
        return lines

    @field_validator("amount")
    @classmethod
    def _amount_matches_lines(cls, amount: Decimal, info: ValidationInfo) -> Decimal:
        currency = info.data.get("currency")
        if currency is not None and _decimals(amount) > MINOR_UNITS[currency]:
            raise ValueError(f"amount {amount} has more decimal places than {currency} "
                             f"allows ({MINOR_UNITS[currency]})")
        lines: list[OrderLineRequest] | None = info.data.get("lines")
        if lines is None:
            return amount  # the lines are invalid: that error names them
        total = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
        if amount != total:
            raise ValueError(f"amount {amount} does not equal the sum of the lines, {total}")
        return amount


class SubmitResponse(_Api):
    """``202`` answer to ``POST /orders``."""

    order_id: str
    status: OrderStatus
    replayed: bool = False
    """True when the Idempotency-Key was seen before: no new order was created."""


class OrderLineView(_Api):
    sku: str
    quantity: int
    unit_price: Decimal


class OrderView(_Api):
    """``GET /orders/{id}``: the order and how it ended."""

    order_id: str
    customer_id: str
    status: OrderStatus
    amount: Decimal
    currency: str
    lines: list[OrderLineView]
    risk_flags: list[str]
    cancel_code: str | None = None
    reason: str | None = None
    """Why it was canceled (None unless status is Canceled)."""
    tracking_id: str | None = None
    created_at: datetime
    updated_at: datetime
