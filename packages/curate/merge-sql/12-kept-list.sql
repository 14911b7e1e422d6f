-- The kept examples in rank order: what the seeded shuffle, split, weights and packing read.
SELECT id, input_index, n_tokens, trained
FROM kept
ORDER BY rnk;
