"""record_recipient(): a campaign recipient's outcome in one round trip, row-level security kept

A campaign records each recipient's outcome in its own committed transaction before the SMTP server accepts
the message (exactly once). As BEGIN, set_config, UPDATE and COMMIT that was four round trips per message;
this function names the org and updates the row in one statement, run outside an explicit transaction. It is
SECURITY INVOKER: the caller's role, and the table's row-level security, apply as before.

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-04 08:20:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0027'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
CREATE FUNCTION record_recipient(p_org uuid, p_id uuid, p_status text, p_reason text, p_message_id text,
                                 p_from text[]) RETURNS integer
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
  n integer;
BEGIN
  PERFORM set_config('crm.org_id', p_org::text, true);
  UPDATE campaign_recipients
     SET status = p_status, reason = p_reason, claimed_until = NULL,
         sent_at = CASE WHEN p_status = 'sent' THEN now() ELSE sent_at END,
         message_id = CASE WHEN p_status = 'sent' THEN p_message_id ELSE message_id END
   WHERE org_id = p_org AND id = p_id AND status = ANY (p_from);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$""")


def downgrade() -> None:
    op.execute("DROP FUNCTION record_recipient(uuid, uuid, text, text, text, text[])")
