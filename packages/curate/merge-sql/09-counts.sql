-- The figures manifest.json takes from the global steps.
SELECT
  (SELECT COUNT(*) FROM exact_dropped) AS exact_dropped,
  (SELECT MIN(id) FROM exact_dropped) AS first_exact_dropped,
  (SELECT COUNT(*) FROM near_dropped) AS near_dropped,
  (SELECT COUNT(*) FROM kept) AS kept,
  (SELECT SUM(CASE WHEN truncated THEN 1 ELSE 0 END) FROM exact_kept) AS truncated,
  (SELECT SUM(boundary_merges) FROM exact_kept) AS boundary_merges;
