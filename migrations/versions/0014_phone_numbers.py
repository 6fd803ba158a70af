"""phone numbers in one stored form (E.164), extensions apart (issue 16)

Adds ``household.owner_phone_ext``, ``staff.phone_ext`` and ``ticket.caller_phone_ext``, then
rewrites every stored phone number into the form ``app.phones`` stores (``+8613940512234``,
``+862423456789``): households, staff, crews, tickets, call logs and call-back tasks. An
extension written into the number (``024-23456789转8001``) moves to its column where the
table has one. A number that cannot be parsed is kept exactly as it was and counted in the
log output (``phone numbers: household.owner_phone 120 rewritten, 3 kept as they were``);
nothing is lost. Downgrade writes extensions back after the number (``+862423456789转8001``,
where it fits in 20 characters), drops the extension columns and leaves numbers in E.164.

Revision ID: 0014
Revises: 0013
"""
import logging

from alembic import op
import sqlalchemy as sa

from app import phones

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# (table, phone column, extension column or None)
PHONE_COLUMNS = (
    ("household", "owner_phone", "owner_phone_ext"),
    ("staff", "phone", "phone_ext"),
    ("crew", "phone", None),
    ("ticket", "caller_phone", "caller_phone_ext"),
    ("call_log", "caller_phone", None),
    ("callback_task", "caller_phone", None),
)
BATCH = 1000


def upgrade():
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_phone_ext', sa.String(length=10), nullable=True))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_ext', sa.String(length=10), nullable=True))
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caller_phone_ext', sa.String(length=10), nullable=True))
    rewrite_phone_numbers(op.get_bind())


def rewrite_phone_numbers(bind) -> dict[str, tuple[int, int]]:
    """Rewrite each table's numbers; returns "table.column" -> (rewritten, kept as they were)."""
    counts = {}
    for table, column, ext_column in PHONE_COLUMNS:
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()
        changes, kept = [], []
        for row_id, value in rows:
            try:
                phone = phones.parse(value)
            except phones.PhoneError:
                kept.append(row_id)
                continue
            extension = phone.extension if ext_column else None
            if phone.e164 != value or extension:
                changes.append({"id": row_id, "phone": phone.e164, "ext": extension})
        sets = f"{column} = :phone" + (f", {ext_column} = :ext" if ext_column else "")
        statement = sa.text(f"UPDATE {table} SET {sets} WHERE id = :id")
        for start in range(0, len(changes), BATCH):
            chunk = changes[start:start + BATCH]
            bind.execute(statement, chunk if ext_column else [{"id": c["id"], "phone": c["phone"]} for c in chunk])
        counts[f"{table}.{column}"] = (len(changes), len(kept))
        message = (f"phone numbers: {table}.{column} {len(changes)} rewritten, "
                   f"{len(kept)} kept as they were (not a phone number)")
        if kept:
            message += f"; ids {kept[:20]}{' …' if len(kept) > 20 else ''}"
        log.info(message)
    return counts


def downgrade():
    bind = op.get_bind()
    for table, column, ext_column in PHONE_COLUMNS:  # extensions back into the number where they fit
        if ext_column:
            bind.execute(sa.text(f"UPDATE {table} SET {column} = {column} || '转' || {ext_column} "
                                 f"WHERE {ext_column} IS NOT NULL AND length({column}) + 1 + length({ext_column}) <= 20"))
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('caller_phone_ext')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('phone_ext')
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_column('owner_phone_ext')
