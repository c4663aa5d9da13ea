-- Webhooks to partners (partners.domain.webhooks, contracts.webhooks): endpoints, deliveries, attempts.
CREATE TABLE webhook_endpoints (
    endpoint_id          uuid PRIMARY KEY,
    partner_id           text NOT NULL,
    url                  text NOT NULL,
    description          text NOT NULL DEFAULT '',
    event_types          text[] NOT NULL,
    secret_sealed        bytea NOT NULL,          -- AES-GCM under a key derived from PARTNER_KEY_SECRET
    previous_sealed      bytea,                   -- the secret before the last rotation, still signing until:
    previous_until       timestamptz,
    enabled              boolean NOT NULL DEFAULT true,
    disabled_reason      text,                    -- why it was disabled: by a person, or after a day of failures
    disabled_by          text,
    disabled_at          timestamptz,
    last_success_at      timestamptz,
    created_at           timestamptz NOT NULL,
    created_by           text NOT NULL
);
CREATE INDEX webhook_endpoints_by_partner ON webhook_endpoints (partner_id, created_at);

-- One row per message and endpoint: written in the transaction of the fact it tells (the outbox pattern).
CREATE TABLE webhook_deliveries (
    delivery_id          uuid PRIMARY KEY,
    endpoint_id          uuid NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    partner_id           text NOT NULL,
    message_id           text NOT NULL,           -- the webhook-id header: the same for every attempt and replay
    event_type           text NOT NULL,
    body                 bytea NOT NULL,          -- the exact bytes signed and sent
    status               text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    created_at           timestamptz NOT NULL,
    window_start         timestamptz NOT NULL,    -- retries stop a day after this (a replay starts a new day)
    next_attempt_at      timestamptz NOT NULL,    -- while pending: when it is due (or until when a worker leases it)
    attempts             int NOT NULL DEFAULT 0,
    attempts_before      int NOT NULL DEFAULT 0,  -- attempts made before window_start (a replay's schedule starts anew)
    last_status          int,
    last_error           text,
    last_attempt_at      timestamptz,
    delivered_at         timestamptz,
    UNIQUE (endpoint_id, message_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_partner ON webhook_deliveries (partner_id, created_at DESC, delivery_id);

CREATE TABLE webhook_attempts (
    delivery_id          uuid NOT NULL REFERENCES webhook_deliveries (delivery_id),
    attempt              int NOT NULL,            -- one row per attempt: the claim gives each number to one worker
    started_at           timestamptz NOT NULL,
    status_code          int,
    error                text,
    duration_ms          int NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
