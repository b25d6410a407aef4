-- Events are looked up by their pending time only while they wait for it (the job that makes a
-- Pending event Success once its time has passed). An index of just those rows costs the
-- postback path nothing for the events decided at once, which are nearly all of them; before,
-- every event's insert paid for a (status, pending_until) entry.
DROP INDEX conversion_events_due;
CREATE INDEX conversion_events_due ON conversion_events (pending_until, id)
    WHERE status = 'Pending' AND pending_until IS NOT NULL;
