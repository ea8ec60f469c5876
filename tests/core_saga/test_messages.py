"""Envelope encoding and the typed errors for bad input."""

from __future__ import annotations

import uuid

import orjson
import pytest

from core_saga import (
    Envelope,
    InvalidMessageError,
    MalformedMessageError,
    Message,
    UnknownMessageTypeError,
    registry,
)
from core_saga.extension import decode_envelope, new_id


class Shipped(Message):
    message_namespace = "t.msg"
    order_id: str
    parcel_count: int


def test_envelope_round_trip_uses_camel_case_and_urn() -> None:
    env = Envelope(Shipped(order_id="o", parcel_count=2), correlation_id="o",
                   headers={"traceparent": "00-abc-def-01"})
    wire = orjson.loads(env.encode())
    assert wire["messageType"] == "urn:message:t.msg:Shipped:v1"
    assert wire["message"] == {"orderId": "o", "parcelCount": 2}
    back = decode_envelope(env.encode())
    assert back.message == env.message and back.message_id == env.message_id
    assert back.headers == {"traceparent": "00-abc-def-01"}
    assert registry.get("urn:message:t.msg:Shipped:v1") is Shipped


@pytest.mark.parametrize(("body", "error", "text"), [
    (b"{not json", MalformedMessageError, "body is not JSON"),
    (b"[1,2]", MalformedMessageError, "not a JSON object"),
    (b'{"messageType": "x", "message": {}}', MalformedMessageError, "no messageId"),
    (b'{"messageId": "m1", "messageType": "urn:message:nope:X:v1", "message": {}}',
     UnknownMessageTypeError, "message m1: unknown message type 'urn:message:nope:X:v1'"),
    (b'{"messageId": "m2", "messageType": "urn:message:t.msg:Shipped:v1", '
     b'"message": {"orderId": "o", "parcelCount": "many"}}',
     InvalidMessageError, "message m2: invalid urn:message:t.msg:Shipped:v1: parcelCount: "
                          "Input should be a valid integer"),
])
def test_bad_input_raises_a_typed_error_that_says_what_was_wrong(
        body: bytes, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as raised:
        decode_envelope(body)
    assert text in str(raised.value)


def test_a_second_class_with_the_same_urn_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        type("Clash", (Message,), {"__annotations__": {"x": int},
                                   "message_urn": "urn:message:t.msg:Shipped:v1",
                                   "__module__": "elsewhere"})


def test_ids_are_canonical_random_uuids() -> None:
    """Message ids, schedule tokens and request ids: version 4 UUIDs in their canonical
    text form (what MassTransit peers and the console expect), all different."""
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # the variant nibble takes all four of its values (its two random bits are kept)
    assert {text[19] for text in ids} == set("89ab")
