"""matching subscriptions: a person's paid tier, kept by Stripe's webhooks.

Why: issue 15 (seed 002 subscriptions and users.subscription_tier). Stripe tells Rapport
of a subscription's changes through signed webhooks; `matching.subscriptions` keeps each
person's latest state, `matching.stripe_events` the ids of the events already handled (a
delivery Stripe repeats changes nothing), and `matching.tier_of` answers the tier a
person has now: the tier of their live subscription, or free.

Revision ID: 2026_11_30_0033
Revises: 2026_11_30_0032
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0033"
down_revision = "2026_11_30_0032"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


SUBSCRIPTIONS = r"""
CREATE TABLE matching.subscriptions (
    user_id uuid NOT NULL,
    tier text NOT NULL,
    status text NOT NULL,
    stripe_customer_id text,
    stripe_subscription_id text,
    current_period_start timestamptz,
    current_period_end timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    stripe_event_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_subscriptions PRIMARY KEY (user_id),
    CONSTRAINT fk_subscriptions_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_subscriptions_tier CHECK (tier IN ('free', 'premium', 'elite')),
    CONSTRAINT ck_subscriptions_status CHECK (
        status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid',
                   'paused')),
    CONSTRAINT ck_subscriptions_stripe_customer_id CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9]{1,250}$'),
    CONSTRAINT ck_subscriptions_stripe_subscription_id CHECK (
        stripe_subscription_id ~ '^sub_[A-Za-z0-9]{1,250}$'),
    CONSTRAINT ck_subscriptions_period CHECK (current_period_end >= current_period_start)
);
COMMENT ON TABLE matching.subscriptions IS
    'A person''s subscription (seed 002 subscriptions), one per person: written only by Stripe''s webhooks '
    '(system work), read by its owner. users.subscription_tier of seed 002 is matching.tier_of(user_id).';
COMMENT ON COLUMN matching.subscriptions.tier IS
    'The tier the subscription pays for; free while its plan is not known yet or names no paid tier.';
COMMENT ON COLUMN matching.subscriptions.status IS
    'Stripe''s status of the subscription: active, trialing and past_due (Stripe still retrying the payment) '
    'give the tier; the others do not.';
COMMENT ON COLUMN matching.subscriptions.stripe_event_at IS
    'When Stripe made the last subscription event applied here: Stripe does not deliver events in order, and '
    'an older one arriving late must not undo a newer one.';
-- Serves rapport.modules.matching._stripe.apply_subscription_event: whose subscription an event is about.
CREATE UNIQUE INDEX uq_subscriptions_stripe_subscription_id ON matching.subscriptions (stripe_subscription_id);
-- Serves rapport.modules.matching._stripe.apply_subscription_event: a customer's subscription before it is linked.
CREATE INDEX ix_subscriptions_stripe_customer_id ON matching.subscriptions (stripe_customer_id);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON matching.subscriptions
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();
CREATE TRIGGER tr_subscriptions_audit
    AFTER INSERT OR DELETE OR UPDATE OF tier, status, stripe_subscription_id ON matching.subscriptions
    FOR EACH ROW EXECUTE FUNCTION audit.record_change();

ALTER TABLE matching.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_read ON matching.subscriptions FOR SELECT
    USING (user_id = auth.current_user_id() OR auth.is_system());
-- Only Stripe's webhooks, as system work, change a subscription: a person cannot grant themself a tier.
CREATE POLICY subscriptions_write ON matching.subscriptions FOR ALL
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT ON matching.subscriptions TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON matching.subscriptions TO rapport_worker;

CREATE TABLE matching.stripe_events (
    id text NOT NULL,
    type text NOT NULL,
    outcome text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_stripe_events PRIMARY KEY (id),
    CONSTRAINT ck_stripe_events_id CHECK (id ~ '^evt_[A-Za-z0-9]{1,250}$'),
    CONSTRAINT ck_stripe_events_type CHECK (type ~ '^[a-z0-9_.]{1,100}$'),
    CONSTRAINT ck_stripe_events_outcome CHECK (outcome IN ('applied', 'ignored', 'stale'))
);
COMMENT ON TABLE matching.stripe_events IS
    'The Stripe events already handled, by id: a delivery Stripe repeats is answered without effect. '
    'Neither the payload nor whom it concerns is kept. System work only.';
COMMENT ON COLUMN matching.stripe_events.outcome IS
    'applied (the subscription changed), ignored (nothing of Rapport''s), stale (older than what is applied).';
ALTER TABLE matching.stripe_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE matching.stripe_events FORCE ROW LEVEL SECURITY;
CREATE POLICY stripe_events_system ON matching.stripe_events FOR ALL
    USING (auth.is_system()) WITH CHECK (auth.is_system());
GRANT SELECT, INSERT, UPDATE ON matching.stripe_events TO rapport_worker;

-- Not a definer function: it answers under the caller's row-level security, so a person
-- learns their own tier and "free" of anyone else; system work (the daily round) sees all.
CREATE FUNCTION matching.tier_of(person uuid) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(
            (SELECT s.tier FROM matching.subscriptions s
              WHERE s.user_id = person
                AND s.status IN ('active', 'trialing', 'past_due')
                AND (s.current_period_end IS NULL OR s.current_period_end > now())),
            'free')
    $$;
COMMENT ON FUNCTION matching.tier_of(uuid) IS
    'The tier a person has now (seed 002 users.subscription_tier): their subscription''s while it is active, '
    'trialing or past due and its period has not ended; free otherwise. Under the caller''s row-level security.';
GRANT EXECUTE ON FUNCTION matching.tier_of(uuid) TO rapport_app, rapport_worker;
"""


def upgrade() -> None:
    run_sql(SUBSCRIPTIONS)


def downgrade() -> None:
    run_sql(
        """
        DROP FUNCTION matching.tier_of(uuid);
        DROP TABLE matching.stripe_events;
        DROP TABLE matching.subscriptions;
        """
    )
