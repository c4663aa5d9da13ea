-- Refunds take activity bonuses back into the activity's budget; claim ids belong to their member.

-- What refunds took back of an activity's bonuses. A budget can grant again what came back, so the
-- budget bounds what the activity holds out net (granted minus reversed), not what it ever granted.
ALTER TABLE activities ADD COLUMN points_reversed bigint NOT NULL DEFAULT 0
    CHECK (points_reversed >= 0 AND points_reversed <= points_granted);
ALTER TABLE activities DROP CONSTRAINT activities_check1;  -- points_granted <= budget_points
ALTER TABLE activities ADD CONSTRAINT activities_net_within_budget
    CHECK (points_granted - points_reversed <= budget_points);

-- Each bonus: the purchase it was granted for (NULL for a claim), the client's claim id (claims
-- only, unique per activity and member) and what refunds of its purchase took back of it.
ALTER TABLE activity_grants ADD COLUMN purchase_id uuid;
ALTER TABLE activity_grants ADD COLUMN claim_id uuid;
ALTER TABLE activity_grants ADD COLUMN points_reversed bigint NOT NULL DEFAULT 0
    CHECK (points_reversed >= 0 AND points_reversed <= points);
UPDATE activity_grants g SET claim_id = g.cause_id
FROM activities a WHERE a.activity_id = g.activity_id AND a.kind = 'limited_claim';
UPDATE activity_grants g SET purchase_id = g.cause_id
WHERE g.claim_id IS NULL AND EXISTS (SELECT 1 FROM earnings e WHERE e.event_id = g.cause_id);
CREATE UNIQUE INDEX activity_grants_claim ON activity_grants (activity_id, member_id, claim_id)
    WHERE claim_id IS NOT NULL;
CREATE INDEX activity_grants_purchase ON activity_grants (purchase_id) WHERE purchase_id IS NOT NULL;

-- The purchases that counted towards a member's spend in a spend-threshold activity, so that their
-- refunds lower that spend again (earlier purchases are not known here: their refunds do not).
CREATE TABLE activity_spend (
    purchase_id  uuid NOT NULL,
    activity_id  uuid NOT NULL REFERENCES activities (activity_id),
    member_id    uuid NOT NULL REFERENCES members (member_id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (purchase_id, activity_id)
);
