-- One schema for both backends: only portable types (TEXT, BIGINT, BOOLEAN).
-- Ids are UUID text; timestamps are microseconds since the Unix epoch (UTC);
-- money is BIGINT ten-thousandths of the tenant's currency; JSON documents are TEXT.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    callback_signing_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    scope TEXT NOT NULL,
    partner_id TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE postback_credentials (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    segment TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    valid_until BIGINT
);
CREATE INDEX postback_credentials_by_tenant ON postback_credentials (tenant_id, created_at);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    partner_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, email)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    tenant_id TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Back office lists: advertisers, partners, categories, placements, age-ranges, genders.
CREATE TABLE directory_items (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX directory_items_by_kind ON directory_items (tenant_id, kind, created_at);

CREATE TABLE offers (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    status TEXT NOT NULL,
    partner_id TEXT,
    shared_at BIGINT,
    name TEXT NOT NULL,
    offer_type TEXT NOT NULL,
    tracking_system TEXT NOT NULL,
    spec TEXT NOT NULL,
    spent BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX offers_by_tenant ON offers (tenant_id, created_at);
CREATE INDEX offers_by_partner ON offers (tenant_id, partner_id, created_at);

CREATE TABLE offer_history (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    offer_id TEXT NOT NULL REFERENCES offers (id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT NOT NULL,
    new_value TEXT NOT NULL
);
CREATE INDEX offer_history_by_offer ON offer_history (offer_id, at);
