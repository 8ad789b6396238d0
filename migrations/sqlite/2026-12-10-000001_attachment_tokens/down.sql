DROP INDEX attachments_unattached_idx;
DROP INDEX attachments_blob_key_idx;
DROP INDEX attachments_uploader_idx;
ALTER TABLE attachments DROP COLUMN token;
