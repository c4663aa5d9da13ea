-- Reward activities: versioned rules, targeting segments, exact caps, and what measuring them needs.

-- What a purchase was, for activity rules and segments (older rows stay NULL).
ALTER TABLE earnings ADD COLUMN channel text CHECK (channel IN ('partner', 'card'));
ALTER TABLE earnings ADD COLUMN partner_id text;
ALTER TABLE earnings ADD COLUMN category text;
ALTER TABLE earnings ADD COLUMN mcc text;
CREATE INDEX earnings_by_identifier ON earnings (identifier, occurred_at);

-- Activity budgets are funded from the programme account; a budget can never go below zero.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (
    kind IN ('member', 'unclaimed', 'partner_issued', 'partner_redeemed', 'card_issued', 'breakage', 'receivable',
             'activity_budget', 'programme')
);
ALTER TABLE accounts DROP CONSTRAINT no_overdraft;
ALTER TABLE accounts ADD CONSTRAINT no_overdraft CHECK (
    kind NOT IN ('member', 'unclaimed', 'activity_budget') OR credits_posted - debits_posted - debits_pending >= 0
);
INSERT INTO accounts (account_id, kind) VALUES ('programme', 'programme');

-- Member segments: rules over what the ledger knows (see points/domain/segments.py).
CREATE TABLE segments (
    segment_id uuid PRIMARY KEY,
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    rules      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE activities (
    activity_id       uuid PRIMARY KEY,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind              text NOT NULL CHECK (kind IN ('multiplier', 'spend_threshold', 'first_purchase',
                                                    'limited_claim', 'referral')),
    budget_points     bigint NOT NULL CHECK (budget_points > 0),
    quantity_cap      bigint CHECK (quantity_cap > 0),
    per_member_cap    bigint CHECK (per_member_cap > 0),
    segment_id        uuid REFERENCES segments (segment_id),
    holdout_share     numeric(4, 3) NOT NULL DEFAULT 0 CHECK (holdout_share >= 0 AND holdout_share <= 0.5),
    grants_count      bigint NOT NULL DEFAULT 0,
    points_granted    bigint NOT NULL DEFAULT 0,
    targets_frozen_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- The caps hold in the schema too, whatever the code does.
    CHECK (quantity_cap IS NULL OR grants_count <= quantity_cap),
    CHECK (points_granted <= budget_points)
);

-- Every change of an activity is a new version from a moment on; an event is judged by the
-- version in force when it occurred, whatever the order in which events arrive.
CREATE TABLE activity_versions (
    activity_id    uuid NOT NULL REFERENCES activities (activity_id),
    version        int NOT NULL CHECK (version >= 1),
    effective_from timestamptz NOT NULL,
    state          text NOT NULL CHECK (state IN ('draft', 'active', 'paused', 'ended')),
    rules          jsonb NOT NULL,
    window_start   timestamptz,
    window_end     timestamptz,
    changed_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (activity_id, version),
    CHECK (window_end IS NULL OR window_start IS NULL OR window_end > window_start)
);

-- Who an activity targets, frozen when it starts; a holdout share of them is kept back as the
-- comparison group and gets nothing.
CREATE TABLE activity_targets (
    activity_id uuid NOT NULL REFERENCES activities (activity_id),
    member_id   uuid NOT NULL REFERENCES members (member_id),
    holdout     boolean NOT NULL,
    PRIMARY KEY (activity_id, member_id)
);
CREATE INDEX activity_targets_member ON activity_targets (member_id);

-- Each member's standing in an activity: what it got, and progress towards a threshold.
CREATE TABLE activity_members (
    activity_id    uuid NOT NULL REFERENCES activities (activity_id),
    member_id      uuid NOT NULL REFERENCES members (member_id),
    grants         bigint NOT NULL DEFAULT 0 CHECK (grants >= 0),
    points         bigint NOT NULL DEFAULT 0 CHECK (points >= 0),
    spend_minor    bigint NOT NULL DEFAULT 0 CHECK (spend_minor >= 0),
    threshold_met  boolean NOT NULL DEFAULT false,
    first_grant_at timestamptz,
    PRIMARY KEY (activity_id, member_id)
);

-- Every bonus, once per activity and cause (a purchase's event id, a claim).
CREATE TABLE activity_grants (
    activity_id uuid NOT NULL REFERENCES activities (activity_id),
    cause_id    uuid NOT NULL,
    member_id   uuid NOT NULL REFERENCES members (member_id),
    points      bigint NOT NULL CHECK (points > 0),
    transfer_id uuid NOT NULL UNIQUE REFERENCES transfers (transfer_id),
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (activity_id, cause_id)
);
CREATE INDEX activity_grants_member ON activity_grants (activity_id, member_id);

-- Who invited whom; the referrer's bonus comes with the invited member's first purchase.
CREATE TABLE referrals (
    referee     uuid PRIMARY KEY REFERENCES members (member_id),
    referrer    uuid NOT NULL REFERENCES members (member_id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    rewarded_at timestamptz,
    CHECK (referee <> referrer)
);
