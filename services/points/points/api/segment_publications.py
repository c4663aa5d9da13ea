"""Segments published for member prices: ops publish one; ops and partner staff list the latest of each."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from loyalty_runtime.auth import Principal, Role, ops_dependency
from points.adapters.segment_publications import Publication, PublicationStore
from points.adapters.segments import SegmentStore
from points.handlers import segment_publications as handlers


class PublicationOut(BaseModel):
    publication_id: uuid.UUID
    segment_id: uuid.UUID
    name: str = Field(description="The segment's name.")
    as_of: datetime = Field(description="When its members were listed; partners' segment prices apply to them.")
    members: int
    published_by: str

    @classmethod
    def of(cls, p: Publication) -> "PublicationOut":
        return cls(publication_id=p.publication_id, segment_id=p.segment_id, name=p.name, as_of=p.as_of,
                   members=p.members, published_by=p.published_by)  # fmt: skip


class PublicationsOut(BaseModel):
    items: list[PublicationOut] = Field(description="The latest publication of each published segment.")


REFUSED: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid bearer token."},
    403: {"description": "Not an ops token (publishing), or a member's token (listing)."},
}


def router(
    segments: Callable[[], SegmentStore],
    publications: Callable[[], PublicationStore],
    authenticate: Callable[..., Principal],
    topic: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    api = APIRouter(tags=["segments"])
    Ops = Annotated[Principal, Depends(ops_dependency(authenticate))]
    Caller = Annotated[Principal, Depends(authenticate)]

    @api.post(
        "/v1/ops/segments/{segment_id}/publications",
        status_code=status.HTTP_201_CREATED,
        responses={**REFUSED, 404: {"description": "No such segment."}},
    )
    async def publish(segment_id: uuid.UUID, ops: Ops) -> PublicationOut:
        """List the segment's members now on loyalty.segment-members.v1, for partners' segment prices.

        The members are those at this moment; publish again to bring a price's segment up to date (the latest
        publication replaces the one before in the catalog once all its parts arrived).
        """
        made = await handlers.publish_segment(segments(), publications(), topic, segment_id, f"ops:{ops.subject}",
                                              clock())  # fmt: skip
        return PublicationOut.of(made)

    @api.get("/v1/segments/published", responses=REFUSED)
    async def published(caller: Caller) -> PublicationsOut:
        """The segments partners may price their offers for (their names and sizes, never their members)."""
        if caller.role is Role.MEMBER:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "published segments are for partner staff and ops")
        return PublicationsOut(items=[PublicationOut.of(p) for p in await handlers.latest_publications(publications())])

    return api
