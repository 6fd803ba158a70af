"""personal-data access log: every opening of a customer page and every export (issue 17)

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('personal_data_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('staff_username', sa.String(length=40), nullable=False),
    sa.Column('staff_name', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_personal_data_access_household_id_household')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_personal_data_access_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_data_access'))
    )
    with op.batch_alter_table('personal_data_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_personal_data_access_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_personal_data_access_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_personal_data_access_household_id'), ['household_id'], unique=False)
        batch_op.create_index('ix_personal_data_access_staff_at', ['staff_id', 'at'], unique=False)


def downgrade():
    op.drop_table('personal_data_access')
