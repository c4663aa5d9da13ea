-- Red packets (points/domain/packets.py): a pool of points, funded from a member's own points or an activity's
-- budget, split at random among its first grabbers; what nobody grabs by the deadline goes back to its source.

-- A packet's pool is an account of its own ('packet:<id>') that holds lots and never overdraws.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (
    kind IN ('member', 'unclaimed', 'partner_issued', 'partner_redeemed', 'card_issued', 'breakage', 'receivable',
             'activity_budget', 'programme', 'packet')
);
ALTER TABLE accounts DROP CONSTRAINT no_overdraft;
ALTER TABLE accounts ADD CONSTRAINT no_overdraft CHECK (
    kind NOT IN ('member', 'unclaimed', 'activity_budget', 'packet')
    OR credits_posted - debits_posted - debits_pending >= 0
);

CREATE TABLE red_packets (
    packet_id       uuid PRIMARY KEY,
    account_id      text NOT NULL UNIQUE REFERENCES accounts (account_id),
    -- Where the points came from and go back to: the member's account, or the activity's budget.
    source_account  text NOT NULL REFERENCES accounts (account_id),
    creator_member  uuid REFERENCES members (member_id),
    created_by      text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    activity_id     uuid REFERENCES activities (activity_id),
    points          bigint NOT NULL CHECK (points > 0 AND points <= 1000000),
    shares          int NOT NULL CHECK (shares BETWEEN 1 AND 1000 AND shares <= points),
    audience        text NOT NULL CHECK (audience IN ('segment', 'friends', 'link')),
    segment_id      uuid REFERENCES segments (segment_id),
    -- Only the SHA-256 of a link packet's token: the token itself is shown once, to its creator.
    link_sha256     text UNIQUE CHECK (link_sha256 ~ '^[0-9a-f]{64}$'),
    message         text NOT NULL DEFAULT '' CHECK (length(message) <= 80),
    -- The create request as sent, so that the same packet id with another body is refused.
    request_sha256  text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'exhausted', 'expired', 'closed')),
    returned_points bigint NOT NULL DEFAULT 0 CHECK (returned_points >= 0 AND returned_points <= points),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    settled_at      timestamptz,
    CHECK ((creator_member IS NULL) = (activity_id IS NOT NULL)),
    CHECK ((audience = 'segment') = (segment_id IS NOT NULL)),
    CHECK ((audience = 'link') = (link_sha256 IS NOT NULL)),
    CHECK ((state = 'open') = (settled_at IS NULL)),
    CHECK (state IN ('open', 'exhausted') OR returned_points > 0),
    CHECK (expires_at > created_at)
);
CREATE INDEX red_packets_due ON red_packets (expires_at) WHERE state = 'open';
CREATE INDEX red_packets_by_creator ON red_packets (creator_member, created_at) WHERE creator_member IS NOT NULL;
CREATE INDEX red_packets_newest ON red_packets (created_at, packet_id);
CREATE INDEX red_packets_by_activity ON red_packets (activity_id) WHERE activity_id IS NOT NULL;

-- Every share, drawn when the packet is created; a grab claims the lowest one nobody has yet.
CREATE TABLE red_packet_shares (
    packet_id  uuid NOT NULL REFERENCES red_packets (packet_id),
    position   int NOT NULL CHECK (position >= 1),
    points     bigint NOT NULL CHECK (points >= 1),
    member_id  uuid REFERENCES members (member_id),
    grab_id    uuid UNIQUE,
    grabbed_at timestamptz,
    PRIMARY KEY (packet_id, position),
    CHECK ((member_id IS NULL) = (grab_id IS NULL) AND (member_id IS NULL) = (grabbed_at IS NULL))
);
-- Each member grabs a packet once.
CREATE UNIQUE INDEX red_packet_shares_once ON red_packet_shares (packet_id, member_id) WHERE member_id IS NOT NULL;
CREATE INDEX red_packet_shares_free ON red_packet_shares (packet_id, position) WHERE member_id IS NULL;
CREATE INDEX red_packet_shares_by_member ON red_packet_shares (member_id, grabbed_at) WHERE member_id IS NOT NULL;

-- Who a segment or friends packet is for, frozen when it is created.
CREATE TABLE red_packet_audience (
    packet_id uuid NOT NULL REFERENCES red_packets (packet_id),
    member_id uuid NOT NULL REFERENCES members (member_id),
    PRIMARY KEY (packet_id, member_id)
);

-- What an activity's budget put into red packets and got back from them. The budget bounds what the
-- activity holds out: its grants net of refunds, plus what sits in its packets (or was grabbed from them).
ALTER TABLE activities ADD COLUMN packet_points bigint NOT NULL DEFAULT 0 CHECK (packet_points >= 0);
ALTER TABLE activities ADD COLUMN packet_points_returned bigint NOT NULL DEFAULT 0
    CHECK (packet_points_returned >= 0 AND packet_points_returned <= packet_points);
ALTER TABLE activities ADD CONSTRAINT activities_packets_within_budget
    CHECK (points_granted - points_reversed + packet_points - packet_points_returned <= budget_points);
