"""a low rating of a live-chat conversation opens a 回访 task too (issue 15)

``follow_up_task`` belongs to a ticket or to a conversation (exactly one of them).

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('follow_up_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_id', sa.Integer(), nullable=True))
        batch_op.alter_column('ticket_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(op.f('fk_follow_up_task_conversation_id_conversation'), 'conversation',
                                    ['conversation_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_follow_up_task_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_unique_constraint(op.f('uq_follow_up_task_conversation_id_reason'),
                                          ['conversation_id', 'reason'])
        batch_op.create_check_constraint(op.f('ck_follow_up_task_ticket_or_conversation'),
                                         '(ticket_id IS NULL) <> (conversation_id IS NULL)')


def downgrade():
    op.execute("DELETE FROM follow_up_task WHERE ticket_id IS NULL")
    with op.batch_alter_table('follow_up_task', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_follow_up_task_ticket_or_conversation'), type_='check')
        batch_op.drop_constraint(op.f('uq_follow_up_task_conversation_id_reason'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_follow_up_task_conversation_id'))
        batch_op.drop_constraint(op.f('fk_follow_up_task_conversation_id_conversation'), type_='foreignkey')
        batch_op.alter_column('ticket_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('conversation_id')
