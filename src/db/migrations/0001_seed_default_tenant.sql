-- Until a deployment creates its own tenants, every request belongs to this one.
INSERT INTO "tenants" ("id", "name") VALUES ('default', 'Default tenant') ON CONFLICT DO NOTHING;
