-- Attribution and targeted messages (points/domain/attribution.py, points/domain/messages.py): share links and
-- their opens, one message per targeted member of an activity with what the messaging systems reported back,
-- members' preferred channel, and the indexes the attribution report reads transfers by.

-- The channel a member wants to be told on; NULL: the one it answered best, else the programme's default.
ALTER TABLE members ADD COLUMN preferred_channel text CHECK (preferred_channel IN ('app', 'sms', 'wechat', 'branch'));

-- A purchase's or a claim's attribution travels in its transfer's memo ({"attribution": {...}}, see
-- points/handlers/earn.py to_fact and points/handlers/activities.py claim). The report reads the attributed
-- transfers of a period, and a share link's purchases and claims, by these partial indexes; every other transfer
-- pays only the test of the predicate. The predicates are repeated verbatim in points/adapters/attribution_store.py.
CREATE INDEX transfers_attributed_by_time ON transfers (occurred_at) WHERE memo ? 'attribution';
CREATE INDEX transfers_by_share_code ON transfers ((memo -> 'attribution' ->> 'share_code'))
WHERE memo -> 'attribution' ? 'share_code';

-- A link a member (for itself) or a staff member (with its branch) made for an offer or an activity. The code is
-- what the link carries: unguessable, and worth nothing but attribution, so it is kept as it is (the sharer lists
-- its links). link_id is the creator's, so that a form sent twice makes one link; request_sha256 is what it asked.
CREATE TABLE share_links (
    link_id        uuid PRIMARY KEY,
    code           text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{16,64}$'),
    created_by     text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    sharer_member  uuid REFERENCES members (member_id),
    staff_id       text CHECK (length(staff_id) BETWEEN 1 AND 64),
    branch_id      text CHECK (length(branch_id) BETWEEN 1 AND 64),
    target_kind    text NOT NULL CHECK (target_kind IN ('offer', 'activity')),
    activity_id    uuid REFERENCES activities (activity_id),
    partner_id     text CHECK (length(partner_id) BETWEEN 1 AND 63),
    offer_id       text CHECK (length(offer_id) BETWEEN 1 AND 128),
    channel        text CHECK (channel IN ('app', 'sms', 'wechat', 'branch', 'web', 'partner')),
    campaign_ref   text CHECK (length(campaign_ref) BETWEEN 1 AND 64),
    window_days    int NOT NULL CHECK (window_days BETWEEN 1 AND 30),
    request_sha256 text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
    created_at     timestamptz NOT NULL,
    CHECK ((sharer_member IS NULL) <> (staff_id IS NULL)),
    CHECK (branch_id IS NULL OR staff_id IS NOT NULL),
    CHECK ((target_kind = 'activity') = (activity_id IS NOT NULL)),
    CHECK ((target_kind = 'offer') = (partner_id IS NOT NULL AND offer_id IS NOT NULL)),
    CHECK (target_kind = 'offer' OR (partner_id IS NULL AND offer_id IS NULL))
);
CREATE INDEX share_links_by_member ON share_links (sharer_member, created_at) WHERE sharer_member IS NOT NULL;
CREATE INDEX share_links_by_staff ON share_links (staff_id, created_at) WHERE staff_id IS NOT NULL;

-- Every open of a link that was kept: when, and the member when it was signed in (once per member, link and
-- programme day). An anonymous open may be claimed by the member who signs in right after it (open_id).
CREATE TABLE share_link_opens (
    open_id   uuid PRIMARY KEY,
    code      text NOT NULL REFERENCES share_links (code),
    opened_at timestamptz NOT NULL,
    day       date NOT NULL,
    member_id uuid REFERENCES members (member_id)
);
CREATE UNIQUE INDEX share_link_opens_once_a_day ON share_link_opens (code, member_id, day) WHERE member_id IS NOT NULL;
CREATE INDEX share_link_opens_by_time ON share_link_opens (opened_at);
CREATE INDEX share_link_opens_by_code ON share_link_opens (code, opened_at);

-- Opens kept per link and minute: a flood of opens stops being stored at the limit (and is answered all the same).
CREATE TABLE share_link_open_minutes (
    code   text NOT NULL REFERENCES share_links (code),
    minute timestamptz NOT NULL,
    opens  int NOT NULL CHECK (opens > 0),
    PRIMARY KEY (code, minute)
);

-- One message per targeted member (never a held-out one) of an activity aimed at a segment, written with its
-- MemberMessaged in the outbox. Its id derives from the activity and the member. The callbacks of the messaging
-- systems set the times; each is the earliest reported, and a later step implies the earlier ones (a click was
-- opened and delivered), so the state follows from the times.
CREATE TABLE member_messages (
    message_id   uuid PRIMARY KEY,
    activity_id  uuid NOT NULL REFERENCES activities (activity_id),
    member_id    uuid NOT NULL REFERENCES members (member_id),
    channel      text NOT NULL CHECK (channel IN ('app', 'sms', 'wechat', 'branch')),
    chosen_by    text NOT NULL CHECK (chosen_by IN ('preference', 'history', 'default')),
    sent_at      timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    delivered_at timestamptz,
    opened_at    timestamptz,
    clicked_at   timestamptz,
    failed_at    timestamptz,
    state        text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN clicked_at IS NOT NULL THEN 'clicked' WHEN opened_at IS NOT NULL THEN 'opened'
             WHEN delivered_at IS NOT NULL THEN 'delivered' WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'sent' END
    ) STORED,
    CONSTRAINT member_messages_once UNIQUE (activity_id, member_id)
);
CREATE INDEX member_messages_by_member ON member_messages (member_id);
CREATE INDEX member_messages_by_time ON member_messages (sent_at);

-- Which activities' targets are being messaged, and how far: the job walks the targets in member id order, a chunk
-- per transaction, from after_member on; finished_at is set when every targeted member has its message (or the
-- activity ended first). Activities that started before this migration are not messaged after the fact.
CREATE TABLE activity_messaging (
    activity_id  uuid PRIMARY KEY REFERENCES activities (activity_id),
    after_member uuid,
    messages     bigint NOT NULL DEFAULT 0 CHECK (messages >= 0),
    queued_at    timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX activity_messaging_due ON activity_messaging (queued_at) WHERE finished_at IS NULL;
INSERT INTO activity_messaging (activity_id, queued_at, finished_at)
SELECT activity_id, now(), now() FROM activities WHERE segment_id IS NOT NULL AND targets_frozen_at IS NOT NULL;

-- Signatures of the messaging systems' callbacks seen within the replay window: each is accepted once.
CREATE TABLE message_callback_signatures (
    signature text PRIMARY KEY CHECK (signature ~ '^[0-9a-f]{64}$'),
    signed_at timestamptz NOT NULL
);
CREATE INDEX message_callback_signatures_by_time ON message_callback_signatures (signed_at);
