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
    ("ix_ticket_updated_at", ["updated_at"]),
    ("ix_ticket_accepted_at", ["accepted_at"]),
    ("ix_ticket_replied_at", ["replied_at"]),
    ("ix_ticket_rated_at", ["rated_at"]),
    # covering index of the open backlog (open, overdue, emergency, crew load)
    ("ix_ticket_backlog", ["state", "finish_by", "priority", "crew_id"]),
)


def upgrade():
    for name, columns in INDEXES:
        op.create_index(name, "ticket", columns)


def downgrade():
    for name, _ in INDEXES:
        op.drop_index(name, table_name="ticket")
