-- The subset of ThingsBoard's PostgreSQL schema that the "OTA Rollout" panels read
-- (column lists as in ThingsBoard 3.7+ schema-ts-psql.sql / schema-entities.sql; see
-- shared/reference/grafana-thingsboard-sql.md §1 and §8). Partitions are added by check-panels.py
-- for the months the telemetry covers, named as ThingsBoard names them (ts_kv_YYYY_MM).

CREATE TABLE key_dictionary (
    key    varchar(255) NOT NULL,
    key_id serial UNIQUE,
    CONSTRAINT key_dictionary_id_pkey PRIMARY KEY (key)
);

CREATE TABLE ts_kv (
    entity_id uuid NOT NULL,
    key       int NOT NULL,
    ts        bigint NOT NULL,
    bool_v    boolean,
    str_v     varchar(10000000),
    long_v    bigint,
    dbl_v     double precision,
    json_v    json,
    CONSTRAINT ts_kv_pkey PRIMARY KEY (entity_id, key, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE ts_kv_indefinite PARTITION OF ts_kv DEFAULT;

CREATE TABLE ts_kv_latest (
    entity_id uuid NOT NULL,
    key       int NOT NULL,
    ts        bigint NOT NULL,
    bool_v    boolean,
    str_v     varchar(10000000),
    long_v    bigint,
    dbl_v     double precision,
    json_v    json,
    version   bigint DEFAULT 0,
    CONSTRAINT ts_kv_latest_pkey PRIMARY KEY (entity_id, key)
);

CREATE TABLE device_profile (
    id           uuid NOT NULL CONSTRAINT device_profile_pkey PRIMARY KEY,
    created_time bigint NOT NULL,
    name         varchar(255),
    tenant_id    uuid
);

CREATE TABLE device (
    id                uuid NOT NULL CONSTRAINT device_pkey PRIMARY KEY,
    created_time      bigint NOT NULL,
    device_profile_id uuid NOT NULL REFERENCES device_profile (id),
    type              varchar(255),
    name              varchar(255),
    label             varchar(255),
    tenant_id         uuid,
    customer_id       uuid
);

-- keys other telemetry and attributes already took (ids are install-specific: the panels join by name)
INSERT INTO key_dictionary (key) VALUES ('active'), ('TTL'), ('temperature'), ('lastActivityTime');

-- Grafana's SELECT-only role; privileges on the partitioned parent are enough
CREATE ROLE grafana_ro LOGIN;
GRANT SELECT ON ts_kv, key_dictionary, ts_kv_latest, device, device_profile TO grafana_ro;
