"""sessions that can be ended: mini-program login families, console/dashboard sessions

- ``api_session``: one mini-program login and the tokens refreshed from it (rotation with
  reuse detection, absolute end); revoked by logout, reuse, deactivation, WeChat unbinding.
- ``staff_session``: one signed-in browser of a staff member (hash of the cookie's key);
  revoked by sign-out, deactivation and password reset.

Tokens and cookies issued before this revision name no session: their holders sign in again.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('wechat_user_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=30), nullable=True),
    sa.ForeignKeyConstraint(['wechat_user_id'], ['wechat_user.id'], name=op.f('fk_api_session_wechat_user_id_wechat_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_session'))
    )
    with op.batch_alter_table('api_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_session_wechat_user_id'), ['wechat_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_session_expires_at'), ['expires_at'], unique=False)

    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=30), nullable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_staff_session_staff_id_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_staff_session_key_hash'))
    )
    with op.batch_alter_table('staff_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_session_staff_id'), ['staff_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_session_expires_at'), ['expires_at'], unique=False)


def downgrade():
    op.drop_table('staff_session')
    op.drop_table('api_session')
