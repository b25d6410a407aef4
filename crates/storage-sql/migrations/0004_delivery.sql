-- Outbound deliveries: partner postbacks and tenant callbacks, written in the same transaction as
-- the conversion decision that triggers them, and claimed by workers with a lease.

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    conversion_id TEXT,
    conversion_event_id TEXT,
    transaction_id TEXT,
    url TEXT NOT NULL,
    method TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT,
    status TEXT NOT NULL,
    failure_reason TEXT,
    attempt_count BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    locked_until BIGINT,
    lease_owner TEXT,
    first_attempt_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- What the workers scan: only the queued rows, by due time.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('Pending', 'Retrying');
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, created_at);
CREATE INDEX deliveries_by_conversion ON deliveries (tenant_id, conversion_id);

CREATE TABLE delivery_attempts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    at BIGINT NOT NULL,
    http_status BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    response_snippet TEXT
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, at);

-- One row per partner: the global postback and the event-level ones (JSON list).
CREATE TABLE partner_postbacks (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    partner_id TEXT NOT NULL,
    global_url TEXT,
    event_postbacks TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, partner_id)
);

CREATE TABLE callback_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    url TEXT,
    header_name TEXT,
    header_value TEXT,
    send_pending BOOLEAN NOT NULL,
    send_rejected BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);
