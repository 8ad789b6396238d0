-- File URLs carry an unguessable token (crates/core/src/files.rs): 128 random bits
-- as 32 hex digits for new uploads. Attachments uploaded before get one here (two
-- random UUIDs, 244 random bits), so their old URLs (`/files/{id}/{name}`) stop
-- working and the new ones cannot be guessed.
ALTER TABLE attachments ADD COLUMN token TEXT NOT NULL DEFAULT '';
UPDATE attachments
   SET token = replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');

-- A user's upload total (the per-user quota), the rows sharing a blob (the sweep of
-- unattached uploads deletes a blob only when no row still names it), and the
-- unattached uploads by age (the sweep itself).
CREATE INDEX attachments_uploader_idx ON attachments (uploader_id);
CREATE INDEX attachments_blob_key_idx ON attachments (blob_key);
CREATE INDEX attachments_unattached_idx ON attachments (created_at) WHERE message_id IS NULL;

-- Downloads read blobs in chunks (substring of the bytea): stored uncompressed, a
-- chunk is read without decompressing the whole value first. Applies to blobs
-- written from now on.
ALTER TABLE chat_blobs ALTER COLUMN bytes SET STORAGE EXTERNAL;
