"""outage-aware service: tickets linked to outages, no-heat clusters, evidence rules

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# category -> minimum photos from the crew before the ticket can be answered
EVIDENCE_RULES = (("leak", 1), ("burst_pipe", 1))


def upgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outage_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sla_held_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ticket_outage_id'), ['outage_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_ticket_outage_id_outage'), 'outage', ['outage_id'], ['id'])

    op.create_table('outage_cluster',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=30), nullable=False),
    sa.Column('open_key', sa.String(length=30), nullable=True),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('report_count', sa.Integer(), nullable=False),
    sa.Column('first_report_at', sa.DateTime(), nullable=False),
    sa.Column('last_report_at', sa.DateTime(), nullable=False),
    sa.Column('outage_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], name=op.f('fk_outage_cluster_community_id_community')),
    sa.ForeignKeyConstraint(['outage_id'], ['outage.id'], name=op.f('fk_outage_cluster_outage_id_outage')),
    sa.ForeignKeyConstraint(['station_id'], ['station.id'], name=op.f('fk_outage_cluster_station_id_station')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outage_cluster')),
    sa.UniqueConstraint('open_key', name=op.f('uq_outage_cluster_open_key'))
    )
    with op.batch_alter_table('outage_cluster', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outage_cluster_scope'), ['scope'], unique=False)

    evidence = op.create_table('evidence_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('min_photos', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_rule')),
    sa.UniqueConstraint('category', name=op.f('uq_evidence_rule_category'))
    )
    op.bulk_insert(evidence, [{"category": c, "min_photos": n} for c, n in EVIDENCE_RULES])


def downgrade():
    op.drop_table('evidence_rule')
    op.drop_table('outage_cluster')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ticket_outage_id_outage'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_ticket_outage_id'))
        batch_op.drop_column('sla_held_at')
        batch_op.drop_column('outage_id')
