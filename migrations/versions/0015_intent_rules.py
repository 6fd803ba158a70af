"""intent classifier vocabulary (意图词库) and the reference knowledge base

- ``intent_rule``: phrases and keywords per intent (app/models/intent.py), seeded with the
  defaults of app/reference/intent_rules.py;
- ``faq_entry``: the reference knowledge base (app/reference/knowledge_base.py) installed so
  production has it too: missing questions are added, the shipped ones brought up to date
  (answers that named menu items and electronic invoices that do not exist are replaced).

Revision ID: 0015
Revises: 0014
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from app.reference import intent_rules, knowledge_base


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('intent_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('intent', sa.String(length=20), nullable=False),
    sa.Column('phrase', sa.String(length=50), nullable=False),
    sa.Column('match', sa.String(length=10), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=20), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('weight BETWEEN -100 AND 100', name=op.f('ck_intent_rule_weight_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intent_rule')),
    sa.UniqueConstraint('intent', 'phrase', 'match', name='uq_intent_rule_intent_phrase_match')
    )
    with op.batch_alter_table('intent_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intent_rule_intent'), ['intent'], unique=False)

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rule = sa.table('intent_rule', sa.column('intent', sa.String), sa.column('phrase', sa.String),
                    sa.column('match', sa.String), sa.column('weight', sa.Integer), sa.column('tag', sa.String),
                    sa.column('active', sa.Boolean), sa.column('updated_at', sa.DateTime))
    rows = [{"intent": intent, "phrase": phrase, "match": match, "weight": weight, "tag": tag, "active": True,
             "updated_at": now} for intent, phrase, match, weight, tag in intent_rules.rows()]
    op.bulk_insert(rule, rows)

    conn = op.get_bind()
    faq = sa.table('faq_entry', sa.column('id', sa.Integer), sa.column('question', sa.String),
                   sa.column('answer', sa.Text), sa.column('keywords', sa.String), sa.column('category', sa.String),
                   sa.column('active', sa.Boolean), sa.column('hits', sa.Integer),
                   sa.column('updated_at', sa.DateTime))
    existing = {q: i for i, q in conn.execute(sa.select(faq.c.id, faq.c.question))}
    for question in knowledge_base.RETIRED_QUESTIONS:  # replaced by entries worded as residents ask
        if question in existing:
            conn.execute(faq.delete().where(faq.c.id == existing.pop(question)))
    new = []
    for category, question, answer, keywords in knowledge_base.ENTRIES:
        values = {"answer": answer, "keywords": keywords, "category": category, "updated_at": now}
        if question in existing:
            conn.execute(faq.update().where(faq.c.id == existing[question]).values(**values))
        else:
            new.append({"question": question, "active": True, "hits": 0, **values})
    if new:
        op.bulk_insert(faq, new)


def downgrade():
    with op.batch_alter_table('intent_rule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intent_rule_intent'))
    op.drop_table('intent_rule')
