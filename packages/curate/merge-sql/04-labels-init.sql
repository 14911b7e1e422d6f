-- Connected components by smallest-label propagation: every linked example starts labelled with its own id.
DROP TABLE IF EXISTS labels;
CREATE TABLE labels AS
SELECT node, MIN(label) AS label
FROM (
  SELECT a AS node, a AS label FROM lsh_edges
  UNION ALL
  SELECT b AS node, b AS label FROM lsh_edges
) t
GROUP BY node;
