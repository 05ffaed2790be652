-- inbound_messages (webhooks)
INSERT INTO inbound_messages (channel, provider_id, address_hash, address_enc, body, payload, sequence, received_at, status, attempts) SELECT channel, provider_id, address_hash, address_enc, body, payload, sequence, received_at, status, attempts FROM jsonb_to_recordset(%s::jsonb) AS r(channel text, provider_id text, address_hash text, address_enc text, body text, payload jsonb, sequence bigint, received_at timestamptz, status text, attempts int) ON CONFLICT (channel, provider_id) DO NOTHING RETURNING id, channel, provider_id;

-- new survey_sessions
INSERT INTO survey_sessions (id, contact_id, survey_id, version, wave, status, question, language, region, state, consented_at, completed_at, started_at, last_activity_at, updated_at, reminders_sent) SELECT id, contact_id, survey_id, version, wave, status, question, language, region, state, consented_at, completed_at, started_at, last_activity_at, updated_at, 0 FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, contact_id bigint, survey_id text, version int, wave int, status text, question text, language text, region text, state jsonb, consented_at timestamptz, completed_at timestamptz, started_at timestamptz, last_activity_at timestamptz, updated_at timestamptz) ORDER BY id;

-- changed survey_sessions
UPDATE survey_sessions AS t SET status = r.status, question = r.question, language = r.language, region = r.region, state = r.state, consented_at = r.consented_at, completed_at = r.completed_at, last_activity_at = :now, updated_at = :now FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, status text, question text, language text, region text, state jsonb, consented_at timestamptz, completed_at timestamptz) WHERE t.id = r.id;

-- outbound_messages
INSERT INTO outbound_messages (contact_id, session_id, channel, kind, body, payload, status, error, attempts, created_at) SELECT contact_id, session_id, channel, kind, body, payload, status, error, attempts, created_at FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(contact_id bigint, session_id bigint, channel text, kind text, body text, payload jsonb, status text, error text, attempts int, created_at timestamptz) RETURNING id, status;

-- handled inbound_messages
UPDATE inbound_messages AS t SET status = r.status, contact_id = r.contact_id, processed_at = :now FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id bigint, status text, contact_id bigint) WHERE t.id = r.id;

-- answers
INSERT INTO answers (session_id, question_id, value, skipped, in_gap, inbound_id, answered_at) SELECT session_id, question_id, CAST(value AS jsonb), skipped, in_gap, inbound_id, answered_at FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(session_id bigint, question_id text, value text, skipped boolean, in_gap boolean, inbound_id bigint, answered_at timestamptz) ON CONFLICT (session_id, question_id) DO UPDATE SET value = excluded.value, skipped = excluded.skipped, in_gap = excluded.in_gap, inbound_id = excluded.inbound_id, answered_at = excluded.answered_at;

