-- One round: each node takes the smallest label among its own, its neighbours' and its label's label
-- (a jump that shortens long chains). Run 06; while it counts changes, run 07 and this file again.
-- At the end every node's label is the smallest id of its cluster: the example that stays.
DROP TABLE IF EXISTS labels_next;
CREATE TABLE labels_next AS
SELECT node, MIN(label) AS label
FROM (
  SELECT node, label FROM labels
  UNION ALL
  SELECT e.b AS node, l.label FROM lsh_edges e JOIN labels l ON l.node = e.a
  UNION ALL
  SELECT e.a AS node, l.label FROM lsh_edges e JOIN labels l ON l.node = e.b
  UNION ALL
  SELECT l.node, j.label FROM labels l JOIN labels j ON j.node = l.label
) t
GROUP BY node;
