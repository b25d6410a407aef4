-- A conversion's events are found through its click, which they share (one conversion per
-- click): the (click_id, event_id, dedup_key) unique index answers that lookup. A separate
-- index by conversion cost every event's insert one more B-tree entry on the postback path.
DROP INDEX conversion_events_by_conversion;
