"""phone-system bridge (call log, call-back tasks, ticket sync)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'call_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('caller_phone', sa.String(length=20), nullable=False),
        sa.Column('agent', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=True),
        sa.Column('recording_url', sa.String(length=500), nullable=True),
        sa.Column('household_id', sa.Integer(), nullable=True),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('last_event_at', sa.DateTime(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_call_log_household_id_household')),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_call_log_ticket_id_ticket')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_call_log')),
        sa.UniqueConstraint('call_id', name=op.f('uq_call_log_call_id')),
    )
    with op.batch_alter_table('call_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_log_caller_phone'), ['caller_phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_log_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_log_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_log_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index('ix_call_log_status_started_at', ['status', 'started_at'], unique=False)

    op.create_table(
        'callback_task',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_log_id', sa.Integer(), nullable=False),
        sa.Column('caller_phone', sa.String(length=20), nullable=False),
        sa.Column('household_id', sa.Integer(), nullable=True),
        sa.Column('missed_at', sa.DateTime(), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('done_by_id', sa.Integer(), nullable=True),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['call_log_id'], ['call_log.id'], name=op.f('fk_callback_task_call_log_id_call_log')),
        sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_callback_task_household_id_household')),
        sa.ForeignKeyConstraint(['done_by_id'], ['staff.id'], name=op.f('fk_callback_task_done_by_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_task')),
        sa.UniqueConstraint('call_log_id', name=op.f('uq_callback_task_call_log_id')),
    )
    with op.batch_alter_table('callback_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_task_caller_phone'), ['caller_phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_task_household_id'), ['household_id'], unique=False)
        batch_op.create_index('ix_callback_task_state_missed_at', ['state', 'missed_at'], unique=False)

    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_updated_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('external_updated_at')

    with op.batch_alter_table('callback_task', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_task_state_missed_at')
        batch_op.drop_index(batch_op.f('ix_callback_task_household_id'))
        batch_op.drop_index(batch_op.f('ix_callback_task_caller_phone'))
    op.drop_table('callback_task')

    with op.batch_alter_table('call_log', schema=None) as batch_op:
        batch_op.drop_index('ix_call_log_status_started_at')
        batch_op.drop_index(batch_op.f('ix_call_log_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_call_log_household_id'))
        batch_op.drop_index(batch_op.f('ix_call_log_started_at'))
        batch_op.drop_index(batch_op.f('ix_call_log_caller_phone'))
    op.drop_table('call_log')
