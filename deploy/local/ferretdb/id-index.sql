-- Lookups by _id that FerretDB 1.x can serve from an index, in the PostgreSQL database that
-- holds its collections (apply as a superuser; idempotent).
--
-- FerretDB 1.24's PostgreSQL backend sends every equality filter, `_id` included, as
-- `_jsonb->$1 @> $2`: the btree index it creates on `(_jsonb->'_id')` cannot serve `@>`, so
-- each find, update or upsert by _id scans the whole collection (upstream issues #4646,
-- #4209). A GIN index on `(_jsonb->'_id')` serves that operator. This file gives every table
-- that holds documents such an index: the ones that exist now, and, through an event trigger,
-- every table created later (a collection, a rebuild's new generation). With the key as a
-- parameter (`->$1`) only a custom plan can use the index, so the database plans every
-- statement for its parameters.

SET client_min_messages = warning;

CREATE OR REPLACE FUNCTION orderflow_index_document_ids(relation regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_attribute
             WHERE attrelid = relation AND attname = '_jsonb' AND NOT attisdropped) THEN
    -- fastupdate off: every insert updates the index itself, so a lookup never scans a
    -- pending list of recent inserts, and no insert pays for merging a long one.
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb -> %L) jsonb_path_ops) '
                   'WITH (fastupdate = off)',
                   'orderflow_id_gin_' || relation::oid, relation, '_id');
  END IF;
END $$;

CREATE OR REPLACE FUNCTION orderflow_index_new_document_tables() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE created record;
BEGIN
  FOR created IN SELECT objid FROM pg_event_trigger_ddl_commands()
                 WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' LOOP
    PERFORM orderflow_index_document_ids(created.objid::regclass);
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS orderflow_index_document_ids;
CREATE EVENT TRIGGER orderflow_index_document_ids ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION orderflow_index_new_document_tables();

SELECT orderflow_index_document_ids(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%';

SELECT format('ALTER DATABASE %I SET plan_cache_mode = force_custom_plan', current_database())
\gexec
