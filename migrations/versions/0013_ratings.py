"""ratings everywhere: the phone system's IVR rating on the call, follow-up (回访) tasks (issue 15)

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('call_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rating', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('rating_on_ticket', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_check_constraint(op.f('ck_call_log_call_rating_range'), 'rating IS NULL OR (rating BETWEEN 1 AND 5)')

    op.create_table('follow_up_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('done_by_id', sa.Integer(), nullable=True),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_follow_up_task_ticket_id_ticket')),
    sa.ForeignKeyConstraint(['done_by_id'], ['staff.id'], name=op.f('fk_follow_up_task_done_by_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up_task')),
    sa.UniqueConstraint('ticket_id', 'reason', name=op.f('uq_follow_up_task_ticket_id_reason')),
    )
    with op.batch_alter_table('follow_up_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_follow_up_task_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index('ix_follow_up_task_state_created_at', ['state', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('follow_up_task', schema=None) as batch_op:
        batch_op.drop_index('ix_follow_up_task_state_created_at')
        batch_op.drop_index(batch_op.f('ix_follow_up_task_ticket_id'))
    op.drop_table('follow_up_task')
    with op.batch_alter_table('call_log', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_call_log_call_rating_range'), type_='check')
        batch_op.drop_column('rating_on_ticket')
        batch_op.drop_column('rated_at')
        batch_op.drop_column('rating')
