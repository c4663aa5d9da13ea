-- The ops summary's "issued" counts every point that reaches a member (or an unclaimed identifier) from where
-- points are created: besides partners, the card and activity budgets (0009), the programme's tier bonuses and
-- the shares of red packets that an activity's budget funded (their lots' issuer). A member's own red packet
-- only moves points between members, so its shares are not issued again. The predicate is repeated verbatim in
-- points/adapters/reads.py (else the index goes unused).
DROP INDEX transfers_issued_by_time;
CREATE INDEX transfers_issued_by_time ON transfers (posted_at) INCLUDE (amount)
WHERE (credit_account LIKE 'member:%' OR credit_account LIKE 'unclaimed:%')
  AND (debit_account LIKE 'partner:%:issued' OR debit_account = 'card:issued' OR debit_account LIKE 'activity:%:budget'
       OR debit_account = 'programme'
       OR (debit_account LIKE 'packet:%' AND memo->>'issuer' LIKE 'activity:%:budget'));

-- A member's friend circle for red packets (points/adapters/packets_store.py FRIEND_CIRCLE) reads the members it
-- invited; the members that invited it are the primary key's.
CREATE INDEX referrals_by_referrer ON referrals (referrer, created_at);
