"""PostgreSQL persistence of red packets: the packet, its drawn shares, its frozen audience, and the reads.

Locks, in the order every writer takes them (handlers/packets.py): a request's advisory lock (the packet id
for a create, the packet and member for a grab), the packet's row (a return or a close), its shares (a grab,
SKIP LOCKED), the activity (an ops packet's create and return), then accounts in id order (store.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from points.adapters.segments import compile_members
from points.domain.packets import AudienceKind, Packet, PacketState
from points.domain.segments import SegmentRules, segment_rules_from_json

PACKET_COLUMNS = """p.packet_id, p.account_id, p.source_account, p.creator_member, p.created_by, p.activity_id,
p.points, p.shares, p.audience, p.segment_id, p.message, p.state, p.created_at, p.expires_at, p.returned_points,
p.settled_at"""

LOCK_PACKET_ID = "SELECT pg_advisory_xact_lock(hashtextextended('red-packet:' || $1::uuid::text, 0))"
"""Creates with one packet id queue here, even before the packet exists; the later ones read the first."""

LOCK_GRABBER = """
SELECT pg_advisory_xact_lock(hashtextextended('red-packet-grab:' || $1::uuid::text || ':' || $2::uuid::text, 0))
"""
"""One member's grabs of one packet queue here, so that the second reads the share of the first."""

FIND_PACKET = f"SELECT {PACKET_COLUMNS}, p.request_sha256 FROM red_packets p WHERE p.packet_id = $1"

LOCK_PACKET = FIND_PACKET + " FOR UPDATE"

PACKET_BY_LINK = "SELECT packet_id FROM red_packets WHERE link_sha256 = $1"

PACKET_STATE = "SELECT state FROM red_packets WHERE packet_id = $1"
"""Read after the packet's account is locked: a return that got there first has committed its state by then."""

LOCK_DUE = f"""
SELECT {PACKET_COLUMNS}, p.request_sha256 FROM red_packets p
WHERE p.state = 'open' AND p.expires_at <= $1 ORDER BY p.expires_at LIMIT 1 FOR UPDATE SKIP LOCKED
"""
"""The next packet whose deadline passed that no other process is returning."""

INSERT_PACKET = """
INSERT INTO red_packets (packet_id, account_id, source_account, creator_member, created_by, activity_id, points,
                         shares, audience, segment_id, link_sha256, message, request_sha256, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
"""

INSERT_SHARES = """
INSERT INTO red_packet_shares (packet_id, position, points)
SELECT $1, * FROM unnest($2::int[], $3::bigint[])
"""

INSERT_FRIENDS = "INSERT INTO red_packet_audience (packet_id, member_id) SELECT $1, unnest($2::uuid[])"

FREEZE_SEGMENT = """
WITH frozen AS (
    INSERT INTO red_packet_audience (packet_id, member_id) SELECT $1::uuid, seg.member_id FROM ({members}) seg
    RETURNING 1
)
SELECT count(*) FROM frozen
"""

SEGMENT_RULES = "SELECT rules FROM segments WHERE segment_id = $1"

IN_AUDIENCE = "SELECT 1 FROM red_packet_audience WHERE packet_id = $1 AND member_id = $2"

AUDIENCE_SIZE = "SELECT count(*) FROM red_packet_audience WHERE packet_id = $1"

SHARE_OF = """
SELECT position, points, grabbed_at FROM red_packet_shares WHERE packet_id = $1 AND member_id = $2
"""

CLAIM_SHARE = """
SELECT position, points FROM red_packet_shares
WHERE packet_id = $1 AND member_id IS NULL ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED
"""
"""The lowest share nobody holds or is grabbing: concurrent grabbers each get another one, or none."""

TAKE_SHARE = """
UPDATE red_packet_shares SET member_id = $3, grab_id = $4, grabbed_at = $5 WHERE packet_id = $1 AND position = $2
"""

SETTLE_PACKET = "UPDATE red_packets SET state = $2, returned_points = $3, settled_at = $4 WHERE packet_id = $1"

LOCK_ACTIVITY = "SELECT activity_id FROM activities WHERE activity_id = $1 FOR UPDATE"

PUT_INTO_PACKETS = """
UPDATE activities SET packet_points = packet_points + $2, updated_at = now() WHERE activity_id = $1
"""

RETURNED_FROM_PACKETS = """
UPDATE activities SET packet_points_returned = packet_points_returned + $2, updated_at = now() WHERE activity_id = $1
"""

GIVEN_SINCE = """
SELECT (SELECT COALESCE(sum(amount), 0) FROM gifts WHERE sender = $1 AND given_at >= $2)
     + (SELECT COALESCE(sum(points), 0) FROM red_packets
        WHERE creator_member = $1 AND created_at >= $2 AND packet_id <> $3)
"""
"""What a member gave away since a moment: gifts, and the points it put into red packets (but this one)."""

# --- reads -----------------------------------------------------------------------------------------------------

VIEW_COLUMNS = f"""{PACKET_COLUMNS},
       COALESCE(m.display_name, a.name, '') AS sender_name,
       (SELECT count(*) FROM red_packet_shares s WHERE s.packet_id = p.packet_id AND s.member_id IS NOT NULL)
           AS grabbed,
       (SELECT COALESCE(sum(s.points), 0) FROM red_packet_shares s
        WHERE s.packet_id = p.packet_id AND s.member_id IS NOT NULL)::bigint AS grabbed_points"""

VIEW = f"""
SELECT {VIEW_COLUMNS}
FROM red_packets p LEFT JOIN members m ON m.member_id = p.creator_member
LEFT JOIN activities a ON a.activity_id = p.activity_id
WHERE p.packet_id = $1
"""

GRABS = """
SELECT s.position, s.points, s.member_id, s.grabbed_at, m.display_name
FROM red_packet_shares s JOIN members m ON m.member_id = s.member_id
WHERE s.packet_id = $1 AND s.member_id IS NOT NULL ORDER BY s.grabbed_at, s.position
"""

CREATED_BY_MEMBER = f"""
SELECT {VIEW_COLUMNS}
FROM red_packets p LEFT JOIN members m ON m.member_id = p.creator_member
LEFT JOIN activities a ON a.activity_id = p.activity_id
WHERE p.creator_member = $1 ORDER BY p.created_at DESC, p.packet_id DESC LIMIT $2
"""

GRABBED_BY_MEMBER = f"""
SELECT {VIEW_COLUMNS}, g.points AS your_points, g.grabbed_at AS your_grabbed_at
FROM red_packet_shares g JOIN red_packets p ON p.packet_id = g.packet_id
LEFT JOIN members m ON m.member_id = p.creator_member
LEFT JOIN activities a ON a.activity_id = p.activity_id
WHERE g.member_id = $1 ORDER BY g.grabbed_at DESC, p.packet_id DESC LIMIT $2
"""

OPS_LIST = f"""
SELECT {VIEW_COLUMNS}
FROM red_packets p LEFT JOIN members m ON m.member_id = p.creator_member
LEFT JOIN activities a ON a.activity_id = p.activity_id
WHERE ($1::uuid IS NULL OR p.activity_id = $1) AND ($2::bool IS NULL OR (p.creator_member IS NULL) = $2)
ORDER BY p.created_at DESC, p.packet_id DESC LIMIT $3
"""


def packet_of(row: asyncpg.Record) -> Packet:
    return Packet(
        row["packet_id"], row["account_id"], row["source_account"], row["creator_member"], row["created_by"],
        row["activity_id"], row["points"], row["shares"], AudienceKind(row["audience"]), row["segment_id"],
        row["message"], PacketState(row["state"]), row["created_at"], row["expires_at"], row["returned_points"],
        row["settled_at"],
    )  # fmt: skip


# A member's contacts who are members, as the ledger knows them: gifts both ways and invitations both ways.
FRIEND_CIRCLE = """
SELECT member_id FROM (
    SELECT recipient AS member_id, given_at AS at FROM gifts WHERE sender = $1
    UNION ALL SELECT sender, given_at FROM gifts WHERE recipient = $1
    UNION ALL SELECT referee, created_at FROM referrals WHERE referrer = $1
    UNION ALL SELECT referrer, created_at FROM referrals WHERE referee = $1
) contacts
WHERE member_id <> $1
GROUP BY member_id ORDER BY max(at) DESC, member_id LIMIT $2
"""


class PacketsSql:
    """The statements on red packets, run on the caller's connection (inside its transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock_packet_id(self, packet_id: uuid.UUID) -> None:
        await self.conn.execute(LOCK_PACKET_ID, packet_id)

    async def lock_grabber(self, packet_id: uuid.UUID, member_id: uuid.UUID) -> None:
        await self.conn.execute(LOCK_GRABBER, packet_id, member_id)

    async def find(self, packet_id: uuid.UUID) -> tuple[Packet, str] | None:
        """The packet and the fingerprint of the request that created it."""
        row = await self.conn.fetchrow(FIND_PACKET, packet_id)
        return None if row is None else (packet_of(row), row["request_sha256"])

    async def lock(self, packet_id: uuid.UUID) -> Packet | None:
        row = await self.conn.fetchrow(LOCK_PACKET, packet_id)
        return None if row is None else packet_of(row)

    async def lock_due(self, as_of: datetime) -> Packet | None:
        row = await self.conn.fetchrow(LOCK_DUE, as_of)
        return None if row is None else packet_of(row)

    async def state(self, packet_id: uuid.UUID) -> PacketState:
        return PacketState(await self.conn.fetchval(PACKET_STATE, packet_id))

    async def insert(self, packet: Packet, link_sha256: str | None, request_sha256: str, shares: Sequence[int]) -> None:
        p = packet
        await self.conn.execute(
            INSERT_PACKET, p.packet_id, p.account_id, p.source_account, p.creator_member, p.created_by,
            p.activity_id, p.points, p.shares, p.audience.value, p.segment_id, link_sha256, p.message,
            request_sha256, p.created_at, p.expires_at,
        )  # fmt: skip
        await self.conn.execute(INSERT_SHARES, p.packet_id, list(range(1, len(shares) + 1)), list(shares))

    async def friend_circle(self, member_id: uuid.UUID, most: int) -> list[uuid.UUID]:
        """The members `member_id` gave gifts to or got gifts from, invited or was invited by; the latest first."""
        return [row["member_id"] for row in await self.conn.fetch(FRIEND_CIRCLE, member_id, most)]

    async def add_friends(self, packet_id: uuid.UUID, member_ids: Sequence[uuid.UUID]) -> None:
        await self.conn.execute(INSERT_FRIENDS, packet_id, sorted(set(member_ids)))

    async def segment_rules(self, segment_id: uuid.UUID) -> SegmentRules | None:
        """The segment's rules; None when there is no such segment."""
        raw = await self.conn.fetchval(SEGMENT_RULES, segment_id)
        return None if raw is None else segment_rules_from_json(raw)

    async def freeze_segment(self, packet_id: uuid.UUID, rules: SegmentRules, as_of: datetime) -> int:
        """The members matching the segment now become the packet's audience; how many they are."""
        params: list[object] = [packet_id]
        sql = FREEZE_SEGMENT.format(members=compile_members(rules, as_of, params))
        return int(await self.conn.fetchval(sql, *params))

    async def in_audience(self, packet_id: uuid.UUID, member_id: uuid.UUID) -> bool:
        return await self.conn.fetchval(IN_AUDIENCE, packet_id, member_id) is not None

    async def share_of(self, packet_id: uuid.UUID, member_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(SHARE_OF, packet_id, member_id)
        return row

    async def claim_share(self, packet_id: uuid.UUID) -> tuple[int, int] | None:
        """(position, points) of the share this transaction now holds; None when none is left to take."""
        row = await self.conn.fetchrow(CLAIM_SHARE, packet_id)
        return None if row is None else (row["position"], row["points"])

    async def take_share(
        self, packet_id: uuid.UUID, position: int, member_id: uuid.UUID, grab_id: uuid.UUID, at: datetime
    ) -> None:
        await self.conn.execute(TAKE_SHARE, packet_id, position, member_id, grab_id, at)

    async def settle(self, packet_id: uuid.UUID, state: PacketState, returned: int, at: datetime) -> None:
        await self.conn.execute(SETTLE_PACKET, packet_id, state.value, returned, at)

    async def lock_activity(self, activity_id: uuid.UUID) -> None:
        await self.conn.execute(LOCK_ACTIVITY, activity_id)

    async def put_into_packets(self, activity_id: uuid.UUID, points: int) -> None:
        await self.conn.execute(PUT_INTO_PACKETS, activity_id, points)

    async def returned_from_packets(self, activity_id: uuid.UUID, points: int) -> None:
        await self.conn.execute(RETURNED_FROM_PACKETS, activity_id, points)

    async def given_since(self, member_id: uuid.UUID, since: datetime, besides: uuid.UUID) -> int:
        return int(await self.conn.fetchval(GIVEN_SINCE, member_id, since, besides))


class PacketReads:
    """Reads of red packets; they lock nothing. Borrows a pool it does not own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def view(self, packet_id: uuid.UUID) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
        """The packet with its sender's name and tally, and its grabs (in the order they were made)."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(VIEW, packet_id)
            grabs = await conn.fetch(GRABS, packet_id) if row is not None else []
        return row, grabs

    async def packet_by_link(self, link_sha256: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._pool.fetchval(PACKET_BY_LINK, link_sha256)
        return found

    async def in_audience(self, packet_id: uuid.UUID, member_id: uuid.UUID) -> bool:
        return await self._pool.fetchval(IN_AUDIENCE, packet_id, member_id) is not None

    async def has_grabbed(self, packet_id: uuid.UUID, member_id: uuid.UUID) -> bool:
        return await self._pool.fetchval(SHARE_OF, packet_id, member_id) is not None

    async def audience_size(self, packet_id: uuid.UUID) -> int:
        return int(await self._pool.fetchval(AUDIENCE_SIZE, packet_id))

    async def of_member(self, member_id: uuid.UUID, limit: int) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        """(created, grabbed) by the member, newest first."""
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            created = await conn.fetch(CREATED_BY_MEMBER, member_id, limit)
            grabbed = await conn.fetch(GRABBED_BY_MEMBER, member_id, limit)
        return created, grabbed

    async def for_ops(self, activity_id: uuid.UUID | None, by_ops: bool | None, limit: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._pool.fetch(OPS_LIST, activity_id, by_ops, limit)
        return rows
