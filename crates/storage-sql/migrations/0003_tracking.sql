-- Clicks, conversions, conversion events and the postback event log (PRODUCT.md §6–§8).

CREATE TABLE clicks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    offer_id TEXT NOT NULL REFERENCES offers (id),
    partner_id TEXT,
    pub_member_id TEXT NOT NULL,
    pub_click_id TEXT,
    pub_params TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX clicks_by_offer ON clicks (tenant_id, offer_id, created_at);

-- One conversion per click.
CREATE TABLE conversions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    offer_id TEXT NOT NULL REFERENCES offers (id),
    click_id TEXT NOT NULL UNIQUE REFERENCES clicks (id),
    partner_id TEXT,
    pub_member_id TEXT NOT NULL,
    status TEXT NOT NULL,
    rejection_reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversions_by_tenant ON conversions (tenant_id, created_at);

CREATE TABLE conversion_events (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    conversion_id TEXT NOT NULL REFERENCES conversions (id),
    offer_id TEXT NOT NULL,
    click_id TEXT NOT NULL,
    partner_id TEXT,
    pub_member_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    sequence_number BIGINT,
    dedup_key TEXT NOT NULL,
    status TEXT NOT NULL,
    rejection_reason TEXT,
    counted BOOLEAN NOT NULL,
    revenue BIGINT NOT NULL,
    reward BIGINT NOT NULL,
    amount BIGINT,
    currency TEXT,
    transaction_id TEXT NOT NULL,
    params TEXT NOT NULL,
    completed_at BIGINT NOT NULL,
    pending_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- The backstop against double counting: one event per (click, event, repeat key).
    UNIQUE (click_id, event_id, dedup_key)
);
CREATE INDEX conversion_events_by_conversion ON conversion_events (conversion_id, created_at);
CREATE INDEX conversion_events_counted ON conversion_events (offer_id, counted, completed_at);
CREATE INDEX conversion_events_by_member ON conversion_events (offer_id, pub_member_id);
CREATE INDEX conversion_events_due ON conversion_events (status, pending_until);

CREATE TABLE postback_log (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    received_at BIGINT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    http_status BIGINT NOT NULL,
    status TEXT NOT NULL,
    rejection_reason TEXT,
    click_id TEXT,
    conversion_id TEXT,
    conversion_event_id TEXT
);
CREATE INDEX postback_log_by_time ON postback_log (tenant_id, received_at);
