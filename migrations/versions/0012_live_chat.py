"""live chat (会话, issue 15): conversations with an agent and their messages

- ``conversation``: one per resident while open (waiting → active → closed), enforced by a
  partial unique index on ``wechat_user_id`` where the status is not closed (SQLite and
  PostgreSQL both have partial indexes); agent, timestamps for the metrics, the call-back
  flag of a conversation opened out of office hours, the rating, the ticket made of it.
- ``conversation_message``: the transcript; an inbound message's MsgId is unique (a WeChat
  retry has one effect), an outbound one keeps its sending status and error.

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OPEN = sa.text("status != 'closed'")


def upgrade():
    op.create_table('conversation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wechat_user_id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('first_response_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('closed_by', sa.String(length=10), nullable=True),
    sa.Column('last_inbound_at', sa.DateTime(), nullable=True),
    sa.Column('last_activity_at', sa.DateTime(), nullable=False),
    sa.Column('callback_requested', sa.Boolean(), nullable=False),
    sa.Column('callback_done_at', sa.DateTime(), nullable=True),
    sa.Column('callback_done_by_id', sa.Integer(), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rated_at', sa.DateTime(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('rating IS NULL OR (rating BETWEEN 1 AND 5)', name=op.f('ck_conversation_rating_range')),
    sa.ForeignKeyConstraint(['wechat_user_id'], ['wechat_user.id'], name=op.f('fk_conversation_wechat_user_id_wechat_user')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_conversation_household_id_household')),
    sa.ForeignKeyConstraint(['agent_id'], ['staff.id'], name=op.f('fk_conversation_agent_id_staff')),
    sa.ForeignKeyConstraint(['callback_done_by_id'], ['staff.id'], name=op.f('fk_conversation_callback_done_by_id_staff')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_conversation_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation'))
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_wechat_user_id'), ['wechat_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index('ix_conversation_status_opened_at', ['status', 'opened_at'], unique=False)
        batch_op.create_index('ix_conversation_agent_status', ['agent_id', 'status'], unique=False)
        batch_op.create_index('uq_conversation_open_user', ['wechat_user_id'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)

    op.create_table('conversation_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('media_id', sa.String(length=128), nullable=True),
    sa.Column('image_path', sa.String(length=300), nullable=True),
    sa.Column('content_type', sa.String(length=40), nullable=True),
    sa.Column('sender_staff_id', sa.Integer(), nullable=True),
    sa.Column('wechat_msgid', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=True),
    sa.Column('errcode', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_conversation_message_conversation_id_conversation')),
    sa.ForeignKeyConstraint(['sender_staff_id'], ['staff.id'], name=op.f('fk_conversation_message_sender_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_message')),
    sa.UniqueConstraint('wechat_msgid', name=op.f('uq_conversation_message_wechat_msgid'))
    )
    with op.batch_alter_table('conversation_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_message_conversation_id'), ['conversation_id'], unique=False)


def downgrade():
    op.drop_table('conversation_message')
    op.drop_table('conversation')
