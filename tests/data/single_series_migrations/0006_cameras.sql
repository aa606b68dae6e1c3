-- Window cameras of the administrative supervision centre (video/).

CREATE TABLE cameras (
    id            serial PRIMARY KEY,
    code          text NOT NULL UNIQUE,
    name          text NOT NULL,
    department    text NOT NULL,
    window_label  text NOT NULL,
    lon           double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat           double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    main_url      text NOT NULL,          -- may hold credentials: never sent to browsers or logged
    sub_url       text NOT NULL DEFAULT '',
    roi           jsonb NOT NULL,
    opening_hours jsonb NOT NULL,
    thresholds    jsonb NOT NULL,
    from_config   boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
