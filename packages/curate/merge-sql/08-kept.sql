-- Near dedup: an example whose cluster has a smaller id is dropped (its keeper is that id). The
-- examples left, numbered by rank in input order, are what split, weights and packing take.
DROP TABLE IF EXISTS near_dropped;
CREATE TABLE near_dropped AS
SELECT k.shard, k.local_id, k.id, l.label AS keeper
FROM exact_kept k JOIN labels l ON l.node = k.id
WHERE l.label < k.id;
DROP TABLE IF EXISTS kept;
CREATE TABLE kept AS
SELECT k.shard, k.local_id, k.id, k.input_index, k.n_tokens, k.trained,
       ROW_NUMBER() OVER (ORDER BY k.id) - 1 AS rnk
FROM exact_kept k LEFT JOIN near_dropped d ON d.id = k.id
WHERE d.id IS NULL;
