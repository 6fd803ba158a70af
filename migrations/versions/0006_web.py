"""dashboard indexes (leader dashboard and staff console)

Revision ID: 0006
Revises: 0005
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_ticket_updated_at", "updated_at"),
    ("ix_ticket_accepted_at", "accepted_at"),
    ("ix_ticket_replied_at", "replied_at"),
    ("ix_ticket_rated_at", "rated_at"),
)


def upgrade():
    for name, column in INDEXES:
        op.create_index(name, "ticket", [column])


def downgrade():
    for name, _ in INDEXES:
        op.drop_index(name, table_name="ticket")
