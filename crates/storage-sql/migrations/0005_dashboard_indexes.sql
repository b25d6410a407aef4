-- The dashboard's lists at 10,000 offers and 1,000,000 conversions (issue 5): every list and its
-- (capped) count is answered from one index, newest first, without reading the skipped rows.
-- Portable: the same statements for SQLite and PostgreSQL.

-- Offer Management: ORDER BY created_at DESC, id DESC straight from the index, which also holds
-- what the page filters on (status, name), so filtering never reads the offers' large specs.
DROP INDEX offers_by_tenant;
CREATE INDEX offers_by_tenant_time ON offers (tenant_id, created_at, id, status, name);
-- A partner's offers (the portal), in the same order, so this index is still the one chosen.
DROP INDEX offers_by_partner;
CREATE INDEX offers_by_partner ON offers (tenant_id, partner_id, created_at, id);

-- Conversions, no filter (and the search, which scans by time).
DROP INDEX conversions_by_tenant;
CREATE INDEX conversions_by_time ON conversions (tenant_id, created_at, id);

-- Conversions of one offer; status is carried along so "offer + status" is answered from this
-- index alone (and SQLite, without statistics, prefers it to the status index for that filter).
CREATE INDEX conversions_by_offer ON conversions (tenant_id, offer_id, created_at, id, status);

-- Conversions of one status.
CREATE INDEX conversions_by_status ON conversions (tenant_id, status, created_at, id);
