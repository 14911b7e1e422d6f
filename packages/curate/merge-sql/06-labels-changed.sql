-- Nodes whose label the last round changed: 0 means the components are final.
SELECT COUNT(*) AS changed
FROM labels_next n JOIN labels l ON l.node = n.node
WHERE n.label <> l.label;
