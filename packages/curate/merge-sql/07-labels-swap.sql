-- The next round starts from the labels just computed.
DROP TABLE labels;
ALTER TABLE labels_next RENAME TO labels;
