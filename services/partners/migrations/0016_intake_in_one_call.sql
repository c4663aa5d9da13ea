-- Signed purchases and refunds accepted in one call per group of concurrent requests (partners.adapters.intake_store):
-- for each request, its signature, its intake rows and its events in the outbox, all or nothing for that request,
-- one transaction and one round trip for the group. The outbox relay publishes the events after the commit, so a
-- 202 is answered once the purchase is durable here, whether or not the broker is reachable at that moment.
--
-- Each request runs in a subtransaction of its own (a BEGIN ... EXCEPTION block), so one request that is not
-- wholly new leaves the group's other requests untouched. Its outcome, one per request:
--   accepted   its signature and every item were new: rows and events written;
--   replayed   its signature was already used: nothing written;
--   recorded   some item's key or id is already recorded (a retry or a conflict): nothing written, the caller
--              judges it in a transaction of its own (partners.domain.idempotency);
--   contended  it deadlocked with a concurrent request holding some of the same keys: nothing written.
-- Items are given flat, request after request; `sizes` says how many belong to each request.
CREATE FUNCTION intake_accept(
    signatures text[], signed_ats timestamptz[], partners text[], kinds text[], sizes int[],
    keys text[], hashes bytea[], external_ids text[], event_ids uuid[],
    customer_refs text[], amounts bigint[], currencies text[], purchase_ids text[], item_points bigint[],
    out_topic text, event_keys text[], payloads bytea[], event_headers jsonb[]
) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    outcomes text[] := '{}';
    lo int := 1;
    hi int;
    written int;
BEGIN
    FOR r IN 1 .. coalesce(array_length(signatures, 1), 0) LOOP
        hi := lo + sizes[r] - 1;
        BEGIN
            INSERT INTO seen_signatures (signature, signed_at) VALUES (signatures[r], signed_ats[r])
            ON CONFLICT (signature) DO NOTHING;
            GET DIAGNOSTICS written = ROW_COUNT;
            IF written = 0 THEN
                outcomes := outcomes || 'replayed'::text;
            ELSE
                -- Sorted by key, as partners.adapters.intake_store's own claim: concurrent requests lock alike.
                INSERT INTO intake_requests (partner_id, kind, idempotency_key, body_hash, external_id, event_id,
                                             customer_ref, amount_minor, currency, purchase_id, points)
                SELECT partners[r], kinds[r], keys[i], hashes[i], external_ids[i], event_ids[i],
                       customer_refs[i], amounts[i], currencies[i], purchase_ids[i], item_points[i]
                  FROM generate_series(lo, hi) AS i
                 ORDER BY keys[i]
                ON CONFLICT DO NOTHING;
                GET DIAGNOSTICS written = ROW_COUNT;
                IF written < sizes[r] THEN
                    RAISE EXCEPTION 'not all new' USING ERRCODE = 'LIREC';
                END IF;
                INSERT INTO outbox (topic, key, payload, headers)
                SELECT out_topic, event_keys[i], payloads[i], event_headers[i] FROM generate_series(lo, hi) AS i ORDER BY i;
                outcomes := outcomes || 'accepted'::text;
            END IF;
        EXCEPTION
            WHEN SQLSTATE 'LIREC' THEN outcomes := outcomes || 'recorded'::text;
            WHEN deadlock_detected THEN outcomes := outcomes || 'contended'::text;
        END;
        lo := hi + 1;
    END LOOP;
    IF 'accepted' = ANY (outcomes) THEN
        PERFORM pg_notify('outbox', '');  -- wakes the relay when the group commits
    END IF;
    RETURN outcomes;
END
$$;
