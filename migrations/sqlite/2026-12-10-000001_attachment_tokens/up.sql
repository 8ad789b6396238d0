-- File URLs carry an unguessable token (crates/core/src/files.rs): 128 random bits
-- as 32 hex digits. Attachments uploaded before get one here, so their old URLs
-- (`/files/{id}/{name}`) stop working and the new ones cannot be guessed.
ALTER TABLE attachments ADD COLUMN token TEXT NOT NULL DEFAULT '';
UPDATE attachments SET token = lower(hex(randomblob(16)));

-- A user's upload total (the per-user quota), the rows sharing a blob (the sweep of
-- unattached uploads deletes a blob only when no row still names it), and the
-- unattached uploads by age (the sweep itself).
CREATE INDEX attachments_uploader_idx ON attachments (uploader_id);
CREATE INDEX attachments_blob_key_idx ON attachments (blob_key);
CREATE INDEX attachments_unattached_idx ON attachments (created_at) WHERE message_id IS NULL;
