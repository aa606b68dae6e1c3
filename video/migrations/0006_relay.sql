-- Several nodes: which node ingests each camera and where the other nodes reach it (they relay its
-- tiles and live stream to their own walls and focused viewers from there), and the secret the
-- nodes prove themselves to each other with.
CREATE TABLE camera_ingest (
    camera_id integer PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    node_url  text NOT NULL,
    since     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE relay_secret (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret   text NOT NULL
);
