-- The report's first near duplicates, in input order, each with the example it duplicates.
SELECT e.preview, ke.preview AS keeper_preview
FROM near_dropped d
JOIN examples e ON e.shard = d.shard AND e.local_id = d.local_id
JOIN docs kd ON kd.id = d.keeper
JOIN examples ke ON ke.shard = kd.shard AND ke.local_id = kd.local_id
ORDER BY d.id
LIMIT 3;
