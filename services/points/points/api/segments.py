"""Segments (ops): define them with rules, read them, and preview who they hold."""

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from loyalty_runtime.auth import Principal, ops_dependency
from points.adapters.segments import SegmentStore
from points.domain import segments as rules_doc
from points.domain.segments import InvalidSegmentRulesError, SegmentRules
from points.handlers import segments as handlers
from points.handlers.segments import Segment, SegmentIdReusedError, SegmentNotFoundError

ERRORS: dict[type[Exception], int] = {
    SegmentNotFoundError: status.HTTP_404_NOT_FOUND,
    SegmentIdReusedError: status.HTTP_409_CONFLICT,
    InvalidSegmentRulesError: status.HTTP_422_UNPROCESSABLE_CONTENT,
}

RULES = (rules_doc.__doc__ or "").strip()


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the client to make creation idempotent; a new id if omitted."
    )
    name: str = Field(min_length=1, max_length=200)
    rules: SegmentRules


class SegmentOut(BaseModel):
    segment_id: uuid.UUID
    name: str
    rules: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, segment: Segment) -> "SegmentOut":
        return cls(
            segment_id=segment.segment_id,
            name=segment.name,
            rules=segment.rules.to_json(),
            created_at=segment.created_at,
        )


class SegmentsPage(BaseModel):
    items: list[SegmentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: SegmentRules | None = Field(default=None, description="Rules to try before saving them.")
    segment_id: uuid.UUID | None = Field(default=None, description="Or a stored segment.")
    as_of: AwareDatetime | None = Field(default=None, description="Evaluate as of this moment; now if omitted.")

    @model_validator(mode="after")
    def _one_source(self) -> "PreviewIn":
        if (self.rules is None) == (self.segment_id is None):
            raise ValueError("give either rules or segment_id, not both and not neither")
        return self


class PreviewOut(BaseModel):
    count: int = Field(description="Members who meet every condition.")
    sample: list[uuid.UUID] = Field(description="Up to 20 of them.")
    as_of: datetime


def router(store: Callable[[], SegmentStore], authenticate: Callable[..., Principal]) -> APIRouter:
    api = APIRouter(prefix="/v1/ops/segments", tags=["segments"])
    Store = Annotated[SegmentStore, Depends(store)]

    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    refused: Mapping[int | str, dict[str, str]] = {
        401: {"description": "No valid bearer token."},
        403: {"description": "The token is not an ops token."},
        422: {"description": "Rules that do not describe a segment; `detail` says where and why."},
    }

    @api.post(
        "",
        status_code=status.HTTP_201_CREATED,
        description=f"Define a segment; it never changes afterwards.\n\n{RULES}",
        responses={
            **refused,
            200: {"description": "Created before with this segment_id, name and rules."},
            409: {"description": "segment_id used for another segment."},
        },
    )
    async def create_segment(body: SegmentIn, _ops: Ops, segments: Store, response: Response) -> SegmentOut:
        segment, created = await handlers.create_segment(
            segments, body.segment_id or uuid.uuid4(), body.name, body.rules
        )
        if not created:
            response.status_code = status.HTTP_200_OK
        return SegmentOut.of(segment)

    @api.get("", responses=refused)
    async def list_segments(
        _ops: Ops,
        segments: Store,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> SegmentsPage:
        """Segments, newest first."""
        page = await handlers.list_segments(segments, cursor, limit)
        return SegmentsPage(items=[SegmentOut.of(s) for s in page.items], next_cursor=page.next_cursor)

    @api.post("/preview", description=f"How many members a segment holds, and a sample.\n\n{RULES}", responses=refused)
    async def preview_segment(body: PreviewIn, _ops: Ops, segments: Store) -> PreviewOut:
        as_of = body.as_of or datetime.now(UTC)
        found = await handlers.preview(segments, body.rules, body.segment_id, as_of)
        return PreviewOut(count=found.count, sample=found.sample, as_of=as_of)

    @api.get("/{segment_id}", responses={**refused, 404: {"description": "No such segment."}})
    async def get_segment(segment_id: uuid.UUID, _ops: Ops, segments: Store) -> SegmentOut:
        return SegmentOut.of(await handlers.get_segment(segments, segment_id))

    return api
