-- Global row ids. Each shard numbers the rows it read from 0 (bad and filtered rows included); a
-- row's id is its local id plus the rows read by the shards before it: its index in input order,
-- exactly as one process numbers it. Only the columns the global steps need are carried.
DROP TABLE IF EXISTS docs;
CREATE TABLE docs AS
SELECT e.shard, e.local_id, o.first_id + e.local_id AS id, e.input_index, e.exact_key,
       e.n_tokens, e.trained, e.truncated, e.boundary_merges
FROM examples e
JOIN (SELECT shard, SUM(row_count) OVER (ORDER BY shard) - row_count AS first_id FROM shards) o
  ON o.shard = e.shard;
