-- fleetjobs schema, version 4: deferred notifications for changes that touch many things.

-- A change that touches more things than the inline threshold (a CreateJob fan-out, a timeout batch) writes one
-- `fanout` row naming, in thing-name order, the things whose pending set changed (notify_things) and those whose
-- head may have changed (notify_next_things), instead of a notify and a notify-next row per thing. The
-- dispatcher expands it after commit, one chunk of things per transaction; `expanded` counts the entries of each
-- array already turned into notify / notify-next rows, so a dispatcher that dies between chunks resumes there.
ALTER TABLE outbox
  ADD COLUMN notify_things text[],
  ADD COLUMN notify_next_things text[],
  ADD COLUMN expanded integer NOT NULL DEFAULT 0;
-- The dispatcher looks for fanout rows on every pass; without this it would walk every unpublished row.
CREATE INDEX outbox_fanout ON outbox (id) WHERE kind = 'fanout';

-- The execution events of such a change are written bare in its transaction: topic, job, execution and status,
-- no payload. They keep their place in id order; the dispatcher builds their payload and their outbox copy
-- after commit (completeBareEvents), and the sequencer numbers no event at or past the first bare one, so
-- GET /events still serves events in commit order.
ALTER TABLE events
  ALTER COLUMN payload DROP NOT NULL,
  ADD COLUMN thing_name text,
  ADD COLUMN execution_number bigint,
  ADD COLUMN status text;
CREATE INDEX events_bare ON events (id) WHERE payload IS NULL;
