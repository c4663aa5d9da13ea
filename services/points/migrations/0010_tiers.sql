-- Tiers (points/domain/tiers.py): versioned tier sets, each member's qualifying points per programme day, its tier
-- now and every change of it, and the tier bonus a purchase earned.

-- Every tier set ops put is a new version from its moment on; a purchase earns with the version in force when it
-- occurred. base_code: the first tier's code when its threshold is 0 (members without a tier row hold it).
-- caught_up_at: when the catch-up of members whose points already reach a higher tier finished (NULL: to do).
CREATE TABLE tier_sets (
    version          int PRIMARY KEY CHECK (version >= 1),
    effective_from   timestamptz NOT NULL,
    qualification    text NOT NULL CHECK (qualification IN ('rolling_12_months', 'calendar_year')),
    grace_days       int NOT NULL CHECK (grace_days BETWEEN 0 AND 366),
    downgrade_policy text NOT NULL CHECK (downgrade_policy IN ('one_tier_down', 'to_qualified')),
    tiers            jsonb NOT NULL CHECK (jsonb_typeof(tiers) = 'array'),
    base_code        text,
    put_by           text NOT NULL CHECK (length(put_by) BETWEEN 1 AND 200),
    caught_up_at     timestamptz
);

-- What a purchase counts towards its member's tier: the programme day (PROGRAMME_TIMEZONE) it occurred on, when
-- its points were credited to a member (NULL: an unclaimed identifier's, which never qualifies); the tier the
-- member held when it occurred; and the tier bonus it earned, with what refunds took back of it.
ALTER TABLE earnings
    ADD COLUMN qualifying_day date,
    ADD COLUMN tier_code text,
    ADD COLUMN tier_bonus bigint NOT NULL DEFAULT 0 CHECK (tier_bonus >= 0),
    ADD COLUMN tier_bonus_reversed bigint NOT NULL DEFAULT 0 CHECK (tier_bonus_reversed >= 0),
    ADD CONSTRAINT earnings_tier_bonus_reversed_within CHECK (tier_bonus_reversed <= tier_bonus);

-- Qualifying points per member and programme day: a purchase's points minus what refunds reversed of them, on the
-- day it occurred. Written by the earn batch under the member's account lock (one upsert per batch).
CREATE TABLE member_qualifying_days (
    member_id uuid NOT NULL REFERENCES members (member_id),
    day       date NOT NULL,
    points    bigint NOT NULL CHECK (points >= 0),
    PRIMARY KEY (member_id, day)
);

-- Each member's tier now, as its latest change left it (tier_code NULL: no tier). A member without a row holds the
-- base tier. since: when it moved to this tier (a review that confirms it keeps it); changed_at: its latest change.
-- Reviews find the members due by valid_until.
CREATE TABLE member_tiers (
    member_id         uuid PRIMARY KEY REFERENCES members (member_id),
    tier_code         text,
    since             timestamptz NOT NULL,
    changed_at        timestamptz NOT NULL,
    valid_until       date,
    tier_set_version  int NOT NULL REFERENCES tier_sets (version),
    qualifying_points bigint NOT NULL CHECK (qualifying_points >= 0),
    reason            text NOT NULL
);
CREATE INDEX member_tiers_due ON member_tiers (valid_until, member_id) WHERE valid_until IS NOT NULL;
CREATE INDEX member_tiers_by_code ON member_tiers (tier_code);

-- Every change (and confirmation) of a member's tier, with the TierChanged event that announced it.
CREATE TABLE tier_history (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid NOT NULL UNIQUE,
    member_id         uuid NOT NULL REFERENCES members (member_id),
    from_tier         text,
    to_tier           text,
    direction         text NOT NULL CHECK (direction IN ('upgrade', 'downgrade', 'confirmed')),
    reason            text NOT NULL CHECK (reason IN ('qualified', 'review_confirmed', 'review_downgraded',
                                                      'tier_set_changed')),
    qualifying_points bigint NOT NULL CHECK (qualifying_points >= 0),
    at                timestamptz NOT NULL,
    valid_until       date,
    tier_set_version  int NOT NULL REFERENCES tier_sets (version)
);
CREATE INDEX tier_history_by_member ON tier_history (member_id, at, seq);

-- The purchases before tiers: those whose earn transfer credited a member count for it (points a member claimed
-- from an unclaimed identifier do not), on their day in Asia/Shanghai, PROGRAMME_TIMEZONE's default.
UPDATE earnings e SET qualifying_day = (e.occurred_at AT TIME ZONE 'Asia/Shanghai')::date
WHERE e.holder_account LIKE 'member:%'
  AND (e.points = 0 OR EXISTS (
      SELECT 1 FROM transfers t
      WHERE t.cause_event_id = e.event_id AND t.reason IN ('partner_purchase', 'card_purchase')
        AND t.credit_account = e.holder_account
  ));
INSERT INTO member_qualifying_days (member_id, day, points)
SELECT substr(holder_account, length('member:') + 1)::uuid, qualifying_day, sum(points - points_reversed)
FROM earnings WHERE qualifying_day IS NOT NULL
GROUP BY 1, 2;
