-- An escalation store written by handrail's code before external ids (schema version 1,
-- main at 5b17071): `sqlite3 .dump` of two cases, one open and one approved, opened by
-- EscalationRouter with a FakeClock at 2025-01-01T00:00Z.
BEGIN TRANSACTION;
CREATE TABLE deliveries (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            escalation_id TEXT NOT NULL,
            target TEXT NOT NULL,
            payload TEXT NOT NULL,
            not_before INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            lease_until INTEGER,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'given_up'))
        );
INSERT INTO "deliveries" VALUES(1,'01JGFJJZ009AX93YBQEMGNYTX2:0:notify','01JGFJJZ009AX93YBQEMGNYTX2','notify','{"notification":{"id":"01JGFJJZ009AX93YBQEMGNYTX2:0","escalation_id":"01JGFJJZ009AX93YBQEMGNYTX2","kind":"opened","route":"sales","level":0,"level_name":"manager","state":"open","recipients":[],"deciders":["maria"],"due":"2025-01-01T01:00:00Z","summary":"bot for alice wants to crm.deal.discount (rule big-discount)","action":"crm.deal.discount","agent":"bot","on_behalf_of":"alice","resource":null,"reason":"agent:bot: rule ''big-discount'' requires approval via route ''sales''","created_at":"2025-01-01T00:00:00Z","commands":["handrail escalations ack 01JGFJJZ009AX93YBQEMGNYTX2 --by USER","handrail escalations approve 01JGFJJZ009AX93YBQEMGNYTX2 --by USER --reason ''...''","handrail escalations reject 01JGFJJZ009AX93YBQEMGNYTX2 --by USER --reason ''...''"]},"channels":null}',1735689600000000,0,NULL,NULL,'pending');
INSERT INTO "deliveries" VALUES(2,'01JGFJMSK09AX93YBQEMGNYTX3:0:notify','01JGFJMSK09AX93YBQEMGNYTX3','notify','{"notification":{"id":"01JGFJMSK09AX93YBQEMGNYTX3:0","escalation_id":"01JGFJMSK09AX93YBQEMGNYTX3","kind":"opened","route":"sales","level":0,"level_name":"manager","state":"open","recipients":[],"deciders":["maria"],"due":"2025-01-01T01:01:00Z","summary":"bot for alice wants to crm.deal.discount (rule big-discount)","action":"crm.deal.discount","agent":"bot","on_behalf_of":"alice","resource":null,"reason":"agent:bot: rule ''big-discount'' requires approval via route ''sales''","created_at":"2025-01-01T00:01:00Z","commands":["handrail escalations ack 01JGFJMSK09AX93YBQEMGNYTX3 --by USER","handrail escalations approve 01JGFJMSK09AX93YBQEMGNYTX3 --by USER --reason ''...''","handrail escalations reject 01JGFJMSK09AX93YBQEMGNYTX3 --by USER --reason ''...''"]},"channels":null}',1735689660000000,0,NULL,NULL,'pending');
INSERT INTO "deliveries" VALUES(3,'01JGFJMSK09AX93YBQEMGNYTX3:1:notify','01JGFJMSK09AX93YBQEMGNYTX3','notify','{"notification":{"id":"01JGFJMSK09AX93YBQEMGNYTX3:1","escalation_id":"01JGFJMSK09AX93YBQEMGNYTX3","kind":"resolved","route":"sales","level":0,"level_name":"manager","state":"approved","recipients":[],"deciders":["maria"],"due":null,"summary":"bot for alice wants to crm.deal.discount (rule big-discount)","action":"crm.deal.discount","agent":"bot","on_behalf_of":"alice","resource":null,"reason":"ok","created_at":"2025-01-01T00:01:00Z","commands":[]},"channels":null}',1735689660000000,0,NULL,NULL,'pending');
CREATE TABLE escalations (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            route TEXT NOT NULL,
            opened_at INTEGER NOT NULL,
            next_due INTEGER,
            version INTEGER NOT NULL,
            body TEXT NOT NULL
        );
INSERT INTO "escalations" VALUES('01JGFJJZ009AX93YBQEMGNYTX2','open','sales',1735689600000000,1735693200000000,0,'{"id":"01JGFJJZ009AX93YBQEMGNYTX2","route":{"name":"sales","levels":[{"name":"manager","notify":[],"channels":null,"deciders":["maria"],"ack_within":"PT1H","resolve_within":"PT4H","warn_at":0.75}],"hours":null,"on_timeout":"deny","repeat_last":0,"description":""},"request":{"action":"crm.deal.discount","agent":"bot","on_behalf_of":"alice","resource":null,"args":{"deal":"d-1","pct":30},"context":{},"fingerprint":"sha256:7da30886554b4693ebe2bb0f006cd3b4dba1423fb1fd63e3cb81dff06b86ddc0"},"decision":{"effect":"escalate","rule_id":"big-discount","reason":"agent:bot: rule ''big-discount'' requires approval via route ''sales''","escalate_to":"sales","matched":["big-discount","crm"],"undetermined":[],"subject":"agent:bot for user:alice","action":"crm.deal.discount","as_agent":{"effect":"escalate","rule_id":"big-discount","reason":"rule ''big-discount'' requires approval via route ''sales''","escalate_to":"sales","matched":["big-discount","crm"],"undetermined":[],"subject":"agent:bot","action":"crm.deal.discount"},"as_user":{"effect":"escalate","rule_id":"big-discount","reason":"rule ''big-discount'' requires approval via route ''sales''","escalate_to":"sales","matched":["big-discount","crm"],"undetermined":[],"subject":"user:alice","action":"crm.deal.discount"}},"allow_on_timeout":false,"state":"open","level":0,"deciders":["maria"],"opened_at":"2025-01-01T00:00:00Z","level_started_at":"2025-01-01T00:00:00Z","ack_due":"2025-01-01T01:00:00Z","warn_due":"2025-01-01T03:00:00Z","resolve_due":"2025-01-01T04:00:00Z","next_due":"2025-01-01T01:00:00Z","acknowledged_by":null,"decided_by":null,"decided_at":null,"reason":"","allowed":null,"executed_at":null,"executed_by":null,"history":[{"at":"2025-01-01T00:00:00Z","kind":"opened","level":0,"by":null,"reason":"agent:bot: rule ''big-discount'' requires approval via route ''sales''"}],"version":0}');
INSERT INTO "escalations" VALUES('01JGFJMSK09AX93YBQEMGNYTX3','approved','sales',1735689660000000,NULL,1,'{"id":"01JGFJMSK09AX93YBQEMGNYTX3","route":{"name":"sales","levels":[{"name":"manager","notify":[],"channels":null,"deciders":["maria"],"ack_within":"PT1H","resolve_within":"PT4H","warn_at":0.75}],"hours":null,"on_timeout":"deny","repeat_last":0,"description":""},"request":{"action":"crm.deal.discount","agent":"bot","on_behalf_of":"alice","resource":null,"args":{"deal":"d-1","pct":40},"context":{},"fingerprint":"sha256:9be6b57050fc0fffd41c4522807a75e72db91fa2f80862205a03fb46db8f1cde"},"decision":{"effect":"escalate","rule_id":"big-discount","reason":"agent:bot: rule ''big-discount'' requires approval via route ''sales''","escalate_to":"sales","matched":["big-discount","crm"],"undetermined":[],"subject":"agent:bot for user:alice","action":"crm.deal.discount","as_agent":{"effect":"escalate","rule_id":"big-discount","reason":"rule ''big-discount'' requires approval via route ''sales''","escalate_to":"sales","matched":["big-discount","crm"],"undetermined":[],"subject":"agent:bot","action":"crm.deal.discount"},"as_user":{"effect":"escalate","rule_id":"big-discount","reason":"rule ''big-discount'' requires approval via route ''sales''","escalate_to":"sales","matched":["big-discount","crm"],"undetermined":[],"subject":"user:alice","action":"crm.deal.discount"}},"allow_on_timeout":false,"state":"approved","level":0,"deciders":["maria"],"opened_at":"2025-01-01T00:01:00Z","level_started_at":"2025-01-01T00:01:00Z","ack_due":null,"warn_due":null,"resolve_due":null,"next_due":null,"acknowledged_by":null,"decided_by":"maria","decided_at":"2025-01-01T00:01:00Z","reason":"ok","allowed":true,"executed_at":null,"executed_by":null,"history":[{"at":"2025-01-01T00:01:00Z","kind":"opened","level":0,"by":null,"reason":"agent:bot: rule ''big-discount'' requires approval via route ''sales''"},{"at":"2025-01-01T00:01:00Z","kind":"approved","level":0,"by":"maria","reason":"ok"}],"version":1}');
CREATE TABLE handrail_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO "handrail_schema" VALUES('escalations',1);
CREATE INDEX escalations_next_due ON escalations (next_due) WHERE next_due IS NOT NULL;
CREATE INDEX escalations_opened ON escalations (opened_at, id);
CREATE INDEX escalations_state ON escalations (state, opened_at, id);
CREATE INDEX deliveries_pending ON deliveries (seq) WHERE status = 'pending';
CREATE INDEX deliveries_escalation ON deliveries (escalation_id, seq);
COMMIT;
