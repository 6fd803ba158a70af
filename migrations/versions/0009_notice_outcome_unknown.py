"""notices whose outcome is unknown: outbound_message.sending_at, delivery.resends

- ``outbound_message.sending_at``: when the call whose answer we may not have was made
  (status ``sending``); a template message is re-sent with its client_msg_id only while
  WeChat still deduplicates it. New statuses ``sending``, ``unknown`` and ``resent`` need no
  schema change (the column is a string).
- ``delivery.resends``: how many times staff resent a broadcast message whose outcome was
  unknown; part of the notice key, so each resend is sent once.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sending_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resends', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_column('resends')
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_column('sending_at')
