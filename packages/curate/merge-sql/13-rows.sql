-- The tokens of one split in row order. `placement` (split_index, rnk, row_idx, slot) is what the
-- packing plan wrote: which example fills which slot of which row (a train example may fill several).
SELECT p.split_index, p.row_idx, p.slot, e.ids, e.mask
FROM placement p
JOIN kept k ON k.rnk = p.rnk
JOIN examples e ON e.shard = k.shard AND e.local_id = k.local_id
ORDER BY p.split_index, p.row_idx, p.slot;
