"""event commit order: the changes feed reads each org's commits in the order they committed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 09:00:00+00:00

A deferred constraint trigger on `events` gives each committing transaction its position in the org's
commit order (see app/domain/events/service.py). Existing events keep their order: each (org, transaction)
that wrote events becomes a commit at position `seq = txid`, so a cursor the feed issued before (base64 JSON
[txid, event id]) reads on as a position [seq, event id], nothing skipped or repeated. Each org's counter
then starts above every existing txid and above this migration's own transaction id, so later commits sort
after all of them. After a downgrade, cursors issued since the upgrade are not valid.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.domain.events.models import Xid8

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The next position of each org (in the order given), for a transaction that wrote its events; an org it
# has already stamped is skipped (the transaction's own list, `crm.event_commit_orgs`, ends with it).
STAMP_FUNCTION = """
CREATE FUNCTION stamp_event_commits(orgs uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    org uuid;
    next_seq bigint;
BEGIN
    FOREACH org IN ARRAY orgs LOOP
        CONTINUE WHEN strpos(coalesce(current_setting('crm.event_commit_orgs', true), ''), org::text) > 0;
        INSERT INTO event_positions AS p (org_id, seq) VALUES (org, 1)
            ON CONFLICT (org_id) DO UPDATE SET seq = p.seq + 1
            RETURNING p.seq INTO next_seq;
        INSERT INTO event_commits (org_id, seq, txid) VALUES (org, next_seq, pg_current_xact_id());
        PERFORM set_config('crm.event_commit_orgs',
                           coalesce(current_setting('crm.event_commit_orgs', true), '') || org::text || ',', true);
    END LOOP;
END $$"""

# Runs at COMMIT for every event row the transaction inserted (rows of a rolled-back savepoint excluded).
TRIGGER_FUNCTION = """
CREATE FUNCTION events_commit_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF strpos(coalesce(current_setting('crm.event_commit_orgs', true), ''), NEW.org_id::text) = 0 THEN
        PERFORM stamp_event_commits(ARRAY[NEW.org_id]);
    END IF;
    RETURN NULL;
END $$"""


def upgrade() -> None:
    op.create_table('event_positions',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_event_positions_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_event_positions'))
    )
    op.create_table('event_commits',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('txid', Xid8(), nullable=False),
    sa.Column('committed_at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_event_commits_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'seq', name=op.f('pk_event_commits'))
    )
    # Writers still in flight finish first; new ones wait until the backfill is committed.
    op.execute("LOCK TABLE events IN SHARE MODE")
    op.execute("""
        INSERT INTO event_commits (org_id, seq, txid, committed_at)
        SELECT org_id, txid::text::bigint, txid, max(occurred_at) FROM events GROUP BY org_id, txid""")
    op.execute("""
        INSERT INTO event_positions (org_id, seq)
        SELECT o.id, greatest(pg_current_xact_id()::text::bigint,
                              (SELECT max(c.seq) FROM event_commits c WHERE c.org_id = o.id))
        FROM orgs o""")
    op.execute(STAMP_FUNCTION)
    op.execute(TRIGGER_FUNCTION)
    op.execute("""
        CREATE CONSTRAINT TRIGGER events_commit_position AFTER INSERT ON events
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_commit_position()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER events_commit_position ON events")
    op.execute("DROP FUNCTION events_commit_position()")
    op.execute("DROP FUNCTION stamp_event_commits(uuid[])")
    op.drop_table('event_commits')
    op.drop_table('event_positions')
