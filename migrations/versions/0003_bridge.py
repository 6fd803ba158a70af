"""phone-system bridge (call log, ticket sync)

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
    pass  # filled in by the bridge work


def downgrade():
    pass
