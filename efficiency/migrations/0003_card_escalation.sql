-- Who in each department hears of its cards, and each card's escalation: told to the contact when it
-- opens, to the leader and then the centre if nobody acknowledges it (efficiency/escalation.py).

CREATE TABLE efficiency_contacts (
    department text NOT NULL,
    role       text NOT NULL CHECK (role IN ('contact', 'leader')),
    name       text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('sms', 'email', 'webhook')),
    address    text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (department, role)
);

-- escalate_at: when the card's next step falls due (NULL: it escalates no further). A card opens
-- with its first step due at once; cards closed before this migration never escalate.
ALTER TABLE efficiency_cards ADD COLUMN acknowledged_at timestamptz;
ALTER TABLE efficiency_cards ADD COLUMN acknowledged_by text NOT NULL DEFAULT '';
ALTER TABLE efficiency_cards ADD COLUMN escalation_step integer NOT NULL DEFAULT 0;
ALTER TABLE efficiency_cards ADD COLUMN escalate_at timestamptz DEFAULT now();
UPDATE efficiency_cards SET escalate_at = NULL WHERE closed_at IS NOT NULL;
CREATE INDEX efficiency_cards_escalate ON efficiency_cards (escalate_at) WHERE escalate_at IS NOT NULL;

-- What each step sent: messages in the notification outbox, whose delivery the screens show.
CREATE TABLE efficiency_card_notices (
    card_id         bigint NOT NULL REFERENCES efficiency_cards (id),
    step            integer NOT NULL,
    role            text NOT NULL CHECK (role IN ('contact', 'leader', 'centre')),
    notification_id bigint NOT NULL REFERENCES notifications (id),
    PRIMARY KEY (card_id, step)
);
