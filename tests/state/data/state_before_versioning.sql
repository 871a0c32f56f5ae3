BEGIN TRANSACTION;
CREATE TABLE leads (
    target TEXT NOT NULL,
    client_id TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,           -- pending_create | pending_update | created | updated | exists | failed
    lead_id TEXT,
    content_hash TEXT,
    payload TEXT,                   -- what was (or will be) POSTed, for repair
    ours INTEGER NOT NULL DEFAULT 0,-- 1 when a run of ours created the lead
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    intent_at REAL,
    done_at REAL,
    run_id TEXT,
    PRIMARY KEY (target, client_id, key)
);
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person0@example.com','created','lead-2364d384-242a-486b-a2e7-5a17de35e4a6','15473936172452506140','{"client_id": "acme-corp", "companyDomain": "company0.com", "companyName": "Company 0", "email": "person0@example.com", "firstName": "First0", "lastName": "-", "linkedinUrl": "https://linkedin.com/in/person0", "source": "csv-import"}',1,1,NULL,1.7961403556636161804e+09,1.79614035568965578083e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person1@example.com','created','lead-85519afa-abc1-4b64-a34d-f691fddb8cd6','15674919459684078714','{"client_id": "acme-corp", "companyDomain": "company1.com", "companyName": "Company 1", "email": "person1@example.com", "firstName": "First1", "lastName": "Last1", "linkedinUrl": "https://linkedin.com/in/person1", "phoneNumber": "+1 555 0001", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570271658899e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person2@example.com','created','lead-2e3cdf1c-3add-408b-a544-9dbf43139661','18418173073295145915','{"client_id": "acme-corp", "companyDomain": "company2.com", "companyName": "Company 2", "email": "person2@example.com", "firstName": "First2", "lastName": "Last2", "linkedinUrl": "https://linkedin.com/in/person2", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035569309258462e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person3@example.com','created','lead-28f62203-f96c-4b10-8a18-621ec240c0cb','17909421256539004559','{"client_id": "acme-corp", "companyDomain": "company3.com", "companyName": "Company 3", "email": "person3@example.com", "firstName": "First3", "lastName": "Last3", "linkedinUrl": "https://linkedin.com/in/person3", "phoneNumber": "+1 555 0003", "source": "csv-import"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570308947561e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person4@example.com','created','lead-1fd4a2c9-e4f0-45e2-9484-39e0be51126b','14587857539950359141','{"client_id": "acme-corp", "companyDomain": "company4.com", "companyName": "Company 4", "email": "person4@example.com", "firstName": "First4", "lastName": "Last4", "linkedinUrl": "https://linkedin.com/in/person4", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570337057115e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person5@example.com','created','lead-123e458b-885d-4d19-a84a-7e3818564fd9','12612775138297117997','{"client_id": "acme-corp", "companyDomain": "company5.com", "companyName": "Company 5", "email": "person5@example.com", "firstName": "First5", "lastName": "Last5", "linkedinUrl": "https://linkedin.com/in/person5", "phoneNumber": "+1 555 0005", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570364022256e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person6@example.com','created','lead-64f561a1-4e9b-4e96-acb9-8a7a64baf3c7','15277840663767626427','{"client_id": "acme-corp", "companyDomain": "company6.com", "companyName": "Company 6", "email": "person6@example.com", "firstName": "First6", "lastName": "Last6", "linkedinUrl": "https://linkedin.com/in/person6", "source": "csv-import"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570385432247e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person7@example.com','created','lead-b7c40ee5-d490-4711-8f0d-86f1e0bbe688','159630042234005017','{"client_id": "acme-corp", "companyDomain": "company7.com", "companyName": "Company 7", "email": "person7@example.com", "firstName": "First7", "lastName": "-", "linkedinUrl": "https://linkedin.com/in/person7", "phoneNumber": "+1 555 0007", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570474672321e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person8@example.com','created','lead-506f8f76-1f84-46ff-953f-80fe29c3fc2a','2856483572977995719','{"client_id": "acme-corp", "companyDomain": "company8.com", "companyName": "Company 8", "email": "person8@example.com", "firstName": "First8", "lastName": "Last8", "linkedinUrl": "https://linkedin.com/in/person8", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570249056818e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person9@example.com','created','lead-ec1b3ec2-f480-4d46-83e4-d6d322517333','881747033966361579','{"client_id": "acme-corp", "companyDomain": "company9.com", "companyName": "Company 9", "email": "person9@example.com", "firstName": "First9", "lastName": "Last9", "linkedinUrl": "https://linkedin.com/in/person9", "phoneNumber": "+1 555 0009", "source": "csv-import"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570290899281e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person10@example.com','created','lead-d8e018ff-d1a3-481f-8ed0-2de0c8bc9948','2084573645989662040','{"client_id": "acme-corp", "companyDomain": "company10.com", "companyName": "Company 10", "email": "person10@example.com", "firstName": "First10", "lastName": "Last10", "linkedinUrl": "https://linkedin.com/in/person10", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570865750307e+09,'20261201T155235Z-5b03c28d');
INSERT INTO "leads" VALUES('http://127.0.0.1:41629#4428a4f8-6c1e-4b7a-9d3f-2e5b8c0a7f61','acme-corp','person11@example.com','created','lead-a02c6f04-e307-45c0-8a3d-5c4fd8b99cb7','12048622552859156512','{"client_id": "acme-corp", "companyDomain": "company11.com", "companyName": "Company 11", "email": "person11@example.com", "firstName": "First11", "lastName": "Last11", "linkedinUrl": "https://linkedin.com/in/person11", "phoneNumber": "+1 555 0011", "source": "csv-import", "title": "VP Sales"}',1,1,NULL,1.7961403556636161804e+09,1.79614035570977807051e+09,'20261201T155235Z-5b03c28d');
CREATE TABLE marks (
    job TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job, name)
);
INSERT INTO "marks" VALUES('hubspot:acme','hubspot.lastmodifieddate','2026-11-01T00:00:00Z',1.79614035572264170645e+09);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    source TEXT,
    target TEXT,
    client_id TEXT,
    mode TEXT,
    dry_run INTEGER NOT NULL DEFAULT 0,
    job TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    exit_code INTEGER,
    counts TEXT
);
INSERT INTO "runs" VALUES('20261201T155235Z-5b03c28d','import','csv:in.csv','http://127.0.0.1:41629','acme-corp','insert',0,NULL,1.7961403555547795296e+09,1.7961403557193701267e+09,0,'{"extracted": 12, "valid": 12, "rejected": 0, "duplicates": 0, "created": 12, "updated": 0, "unchanged": 0, "failed": 0, "confirmed": 12, "missing": 0}');
COMMIT;
