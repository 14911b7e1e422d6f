-- The report's first exact duplicates, in input order.
SELECT e.preview, e.source_file, e.line
FROM exact_dropped d JOIN examples e ON e.shard = d.shard AND e.local_id = d.local_id
ORDER BY d.id
LIMIT 3;
