CREATE TABLE visits (id integer PRIMARY KEY, count bigint NOT NULL);
INSERT INTO visits (id, count) VALUES (1, 0);
