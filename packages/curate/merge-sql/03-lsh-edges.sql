-- Near-dedup candidates: examples that share a MinHash LSH band key (same band, same key). Within
-- each bucket every member links to the bucket's first member; the clusters are the connected
-- components of these links (04–07), as the in-memory union-find builds them.
DROP TABLE IF EXISTS lsh_edges;
CREATE TABLE lsh_edges AS
SELECT DISTINCT first_id AS a, id AS b
FROM (
  SELECT k.id, MIN(k.id) OVER (PARTITION BY b.band, b.band_key) AS first_id
  FROM bands b JOIN exact_kept k ON k.shard = b.shard AND k.local_id = b.local_id
) t
WHERE first_id < id;
