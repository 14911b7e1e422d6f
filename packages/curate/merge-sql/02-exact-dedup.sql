-- Exact dedup: of the examples sharing an exact key (SHA-1 of the lowercased, whitespace-collapsed
-- text), the first in input order stays. Examples without a key (exact dedup off) all stay.
DROP TABLE IF EXISTS exact_kept;
CREATE TABLE exact_kept AS
SELECT shard, local_id, id, input_index, n_tokens, trained, truncated, boundary_merges
FROM (SELECT d.*, ROW_NUMBER() OVER (PARTITION BY exact_key ORDER BY id) AS nth FROM docs d) t
WHERE exact_key IS NULL OR nth = 1;
DROP TABLE IF EXISTS exact_dropped;
CREATE TABLE exact_dropped AS
SELECT d.shard, d.local_id, d.id
FROM docs d LEFT JOIN exact_kept k ON k.id = d.id
WHERE k.id IS NULL;
