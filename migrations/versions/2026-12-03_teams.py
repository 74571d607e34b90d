"""teams and their members: record visibility by team

Revision ID: 0014
Revises: 0015
Create Date: 2026-12-03 22:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('teams',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('manager_id', sa.UUID(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_teams_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'manager_id'], ['users.org_id', 'users.id'], name='fk_teams_manager_id'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_teams'))
    )
    op.create_index(op.f('ix_teams_org_id_created_at_id'), 'teams', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_teams_org_id_manager_id'), 'teams', ['org_id', 'manager_id'], unique=False)
    op.create_table('team_members',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('team_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_team_members_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_team_members_team',
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_team_members_user',
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'team_id', 'user_id', name=op.f('pk_team_members'))
    )
    op.create_index(op.f('ix_team_members_org_id_user_id'), 'team_members', ['org_id', 'user_id'], unique=False)


def downgrade() -> None:
    op.drop_table('team_members')
    op.drop_table('teams')
