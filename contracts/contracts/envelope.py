"""The envelope every message carries (DESIGN.md, "Events")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timestamp with an explicit offset, normalised to UTC. Naive timestamps are refused."""


class Contract(BaseModel):
    """Base of every payload: immutable, and tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Event(Contract):
    """An immutable fact, named in the past tense. Subclasses fix `type`, `version` and `payload`."""

    event_id: uuid.UUID = Field(description="Unique id of this event; consumers use it as the idempotency key.")
    type: str
    version: int
    occurred_at: UtcDatetime = Field(description="When the fact happened in the world, in UTC.")
    source: str = Field(min_length=1, max_length=64, description="The system that produced the event.")
    correlation_id: uuid.UUID = Field(description="Shared by every message of one business flow.")
    causation_id: uuid.UUID | None = Field(
        default=None, description="The event_id of the message that caused this one."
    )

    event_type: ClassVar[str]
    event_version: ClassVar[int]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: object) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Concrete events declare `type: Literal["Name"] = "Name"` and `version: Literal[n] = n`.
        type_default = cls.model_fields["type"].default
        version_default = cls.model_fields["version"].default
        if isinstance(type_default, str) and isinstance(version_default, int):
            cls.event_type = type_default
            cls.event_version = version_default
