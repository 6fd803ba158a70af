"""jobs (reminders, broadcasts, notices)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reminder_sent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.String(length=12), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('deadline_at', sa.DateTime(), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_reminder_sent_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_sent')),
    sa.UniqueConstraint('ticket_id', 'deadline', 'level', name=op.f('uq_reminder_sent_ticket_id_deadline_level'))
    )
    with op.batch_alter_table('reminder_sent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminder_sent_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('arrears_reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wechat_user_id', sa.Integer(), nullable=False),
    sa.Column('iso_week', sa.String(length=8), nullable=False),
    sa.Column('announcement_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['announcement_id'], ['announcement.id'], name=op.f('fk_arrears_reminder_announcement_id_announcement')),
    sa.ForeignKeyConstraint(['wechat_user_id'], ['wechat_user.id'], name=op.f('fk_arrears_reminder_wechat_user_id_wechat_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arrears_reminder')),
    sa.UniqueConstraint('wechat_user_id', 'iso_week', name=op.f('uq_arrears_reminder_wechat_user_id_iso_week'))
    )
    with op.batch_alter_table('arrears_reminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arrears_reminder_announcement_id'), ['announcement_id'], unique=False)

    op.create_table('outage_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('outage_id', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=12), nullable=False),
    sa.Column('announcement_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['announcement_id'], ['announcement.id'], name=op.f('fk_outage_notice_announcement_id_announcement')),
    sa.ForeignKeyConstraint(['outage_id'], ['outage.id'], name=op.f('fk_outage_notice_outage_id_outage')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outage_notice')),
    sa.UniqueConstraint('outbox_id', name=op.f('uq_outage_notice_outbox_id'))
    )
    with op.batch_alter_table('outage_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outage_notice_outage_id'), ['outage_id'], unique=False)


def downgrade():
    op.drop_table('outage_notice')
    op.drop_table('arrears_reminder')
    op.drop_table('reminder_sent')
