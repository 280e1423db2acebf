-- Survey figures read every `survey.answered` inbound record of a time window (measure/
-- survey_answers.py); the event's name is never encrypted, so an index on it finds them
-- without reading the other inbound records (receipts, replies, profile events).
CREATE INDEX audit_records_inbound_event_at
    ON audit_records ((body->'event'->>'name'), at, chain_id, seq)
    WHERE kind = 'inbound';
