"""Build the demo city: a fictional northern heating company with a believable history.

`seed_demo()` adds everything to the current session in one go and never commits; the CLI
commits once at the end. An interrupted run therefore leaves nothing behind and can simply
be started again. A fixed random seed makes the data identical on every machine; only the
timestamps follow the real clock (tickets of the last 60 days, outages around "now").
"""
from __future__ import annotations

import hashlib
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app import phones
from app.clock import DEFAULT_TIMEZONE
from app.demo import data
from app.demo.guide import bound_resident_in_arrears
from app.extensions import db
from app.models import (
    ChatSendStatus, Conversation, ConversationMessage,
    Announcement, AnnouncementStatus, Audience, Bill, BillStatus, CallLog, CallStatus, ClusterStatus, Community, Crew,
    CrewArea, Delivery, DeliveryStatus, District, OutageCluster,
    FaqEntry, HeatingSeason, Household, HouseholdBinding, HouseholdStatus, Outage, OutageArea, OutageKind,
    OutageStatus, Payment, PaymentItem, PaymentState, Priority, Role, Staff, Station, Ticket,
    TicketCategory, TicketCounter, TicketEvent, TicketSource, TicketState, TicketType, WechatUser, utcnow,
)
from app.services import clusters
from app.services.billing import bill_amount_fen
from app.services.sla import policy_for
from wechat.notify import NOT_FOLLOWING, REASONS

RANDOM_SEED = 20261123
DEFAULT_HOUSEHOLDS = 2000
TICKETS_PER_2000 = 500
HISTORY_DAYS = 60
SUSPENDED_SHARE = 0.03
SUBSIDY_SHARE = 0.02
ARREARS_SHARE = 0.15
BOTH_SEASONS_SHARE = 0.4       # of the households in arrears
BOUND_SHARE = 0.40
DEFAULT_LATE_FEE_BP = 5
PAID_TODAY_SHARE = 0.008       # of this season's paid bills: the late payers of today (今日收费)
BUSY_SHARE = 0.04              # of an announcement's followers: WeChat busy past every retry (失败)
CLUSTER_STATION = 1            # 建设路换热站: no-heat reports piling up now, no outage recorded (疑似停热)

# The first demo station: its presence means the demo city is already there.
MARKER_STATION_CODE = data.DISTRICTS[0][1][0][0]


@dataclass
class SeedResult:
    status: str                      # created | already_seeded | skipped_not_empty | refused
    message: str
    counts: dict[str, int] = field(default_factory=dict)
    arrears_rate: float = 0.0
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, name, role label)

    @property
    def created(self) -> bool:
        return self.status == "created"


# Where the demo's phone system keeps call recordings (the console links each answered call).
RECORDING_BASE = "https://cc.example.com/recordings"


def demo_present() -> bool:
    return db.session.scalar(select(Station.id).where(Station.code == MARKER_STATION_CODE)) is not None


def seed_demo(households: int = DEFAULT_HOUSEHOLDS, *, if_empty: bool = False, now: datetime | None = None,
              tz: str = DEFAULT_TIMEZONE, late_fee_bp_per_day: int = DEFAULT_LATE_FEE_BP) -> SeedResult:
    """Add the demo city to the session (no commit). Does nothing when it is already there."""
    if demo_present():
        return SeedResult("already_seeded", "演示数据已存在，未做任何改动。Demo data already present; nothing changed.")
    existing = db.session.scalar(select(func.count(Household.id)))
    if existing:
        if if_empty:
            return SeedResult("skipped_not_empty",
                              f"数据库已有 {existing} 户住户，跳过演示数据。"
                              f"{existing} households exist; demo seeding skipped.")
        return SeedResult("refused",
                          f"数据库已有 {existing} 户非演示住户，为避免混入演示数据，未做任何改动。"
                          f"{existing} non-demo households exist; refusing to mix demo data in.")
    clashes = _name_clashes()
    if clashes:
        return SeedResult("refused", "演示数据与现有数据重名，未做任何改动：" + "、".join(clashes)
                          + ". Demo names clash with existing rows; nothing changed.")
    if households < 20:
        raise ValueError("households must be at least 20")
    builder = _Builder(households, now or utcnow(), ZoneInfo(tz), late_fee_bp_per_day)
    return builder.build()


def _name_clashes() -> list[str]:
    usernames = [u for u, _, _ in _staff_plan(random.Random(0))]
    found = list(db.session.scalars(select(Staff.username).where(Staff.username.in_(usernames))))
    found += db.session.scalars(select(District.name).where(District.name.in_([d for d, _ in data.DISTRICTS])))
    found += db.session.scalars(select(Crew.name).where(Crew.name.in_(data.CREWS)))
    return found


def _staff_plan(rng: random.Random) -> list[tuple[str, str, int | None]]:
    """(username, role, crew index) of every demo staff member."""
    plan = [("admin", Role.ADMIN, None)]
    plan += [(f"leader{i}", Role.LEADER, None) for i in range(1, 4)]
    plan += [(f"agent{i}", Role.AGENT, None) for i in range(1, 7)]
    for c in range(len(data.CREWS)):
        plan.append((f"crew{c + 1}_lead", Role.CREW_LEAD, c))
        plan += [(f"crew{c + 1}_m{m}", Role.CREW_MEMBER, c) for m in range(1, rng.randint(3, 5) + 1)]
    return plan


def _round_fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _distinct_nickname(home: Household, taken: set[str]) -> str:
    """The owner's name, told apart by building (then a number) when the demo already has
    someone of that name: the sandbox's chat list is how a newcomer picks who to be."""
    name = home.owner_name
    candidates = [name, f"{name}（{home.building}号楼）"] + [f"{name}（{home.building}号楼·{n}）" for n in range(2, 99)]
    nickname = next(c for c in candidates if c not in taken)
    taken.add(nickname)
    return nickname


def _weighted(rng: random.Random, table: dict):
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


class _Builder:
    def __init__(self, n_households: int, now: datetime, tz: ZoneInfo, late_fee_bp: int) -> None:
        self.rng = random.Random(RANDOM_SEED)
        self.n = n_households
        self.now = now.astimezone(timezone.utc)
        self.tz = tz
        self.late_fee_bp = late_fee_bp
        self.used_phones: set[str] = set()
        self.used_openids: set[str] = set()
        self.session = db.session

    # ------------------------------------------------------------------ helpers
    def local(self, day: date, hour: int = 0, minute: int = 0) -> datetime:
        """A local wall-clock time as an aware UTC datetime."""
        return datetime.combine(day, time(hour, minute), self.tz).astimezone(timezone.utc)

    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    def name(self, female: bool | None = None) -> str:
        surnames, weights = zip(*data.SURNAMES)
        surname = self.rng.choices(surnames, weights=weights)[0]
        if female is None:
            female = self.rng.random() < 0.5
        return surname + self.rng.choice(data.GIVEN_FEMALE if female else data.GIVEN_MALE)

    def phone(self) -> str:
        while True:
            number = self.rng.choice(data.MOBILE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return phones.normalise(number)  # stored as E.164, as every channel stores it

    def openid(self, prefix: str) -> str:
        # Real openids of one account share a short prefix; 28 characters in all.
        alphabet = string.ascii_letters + string.digits + "-_"
        while True:
            value = prefix + "".join(self.rng.choice(alphabet) for _ in range(28 - len(prefix)))
            if value not in self.used_openids:
                self.used_openids.add(value)
                return value

    def between(self, start: datetime, end: datetime) -> datetime:
        if end <= start:
            return start
        return start + timedelta(seconds=self.rng.uniform(0, (end - start).total_seconds()))

    # ------------------------------------------------------------------ build
    def build(self) -> SeedResult:
        self.build_areas()
        self.build_staff()
        self.build_households()
        self.build_wechat_users()
        self.build_bills()
        self.build_faq()
        self.build_tickets()
        self.build_outages_and_announcements()
        self.build_conversations()
        self.build_live_day()
        self.build_suspected_outage()
        self.session.flush()
        return self.summary()

    def build_conversations(self) -> None:
        """Live chat (会话): one resident waiting in the queue, one talking with agent1, so the
        console's 会话 page is populated; both wrote within the last hour (WeChat's window is open)."""
        agent = next((s for s in self.staff if s.username == "agent1"), None)
        featured = bound_resident_in_arrears()  # the guide's resident keeps a quiet chat
        people = [u for u in self.wechat_users if u.subscribed and u.bindings and u.staff_id is None
                  and (featured is None or u.id != featured[0].id)][:2]
        if agent is None or len(people) < 2:
            return
        for user, (opened, words, answer, more) in zip(people, data.CHAT_DEMO):
            at = self.now - timedelta(minutes=opened)
            conv = Conversation(wechat_user_id=user.id, household_id=user.bindings[0].household_id,
                                status="waiting" if answer is None else "active", opened_at=at,
                                last_inbound_at=at, last_activity_at=at)
            conv.messages.append(ConversationMessage(direction="in", text=words, status=ChatSendStatus.RECEIVED,
                                                     created_at=at))
            if answer is not None:
                conv.agent_id, conv.claimed_at = agent.id, at + timedelta(minutes=1)
                conv.first_response_at = at + timedelta(minutes=2)
                conv.messages.append(ConversationMessage(
                    direction="out", text=answer, sender_staff_id=agent.id, status=ChatSendStatus.SENT,
                    channel="custom", created_at=conv.first_response_at, sent_at=conv.first_response_at))
                later = at + timedelta(minutes=4)
                conv.messages.append(ConversationMessage(direction="in", text=more, status=ChatSendStatus.RECEIVED,
                                                         created_at=later))
                conv.last_inbound_at = conv.last_activity_at = later
            user.last_interaction_at = conv.last_inbound_at
            self.session.add(conv)

    def build_areas(self) -> None:
        self.districts: list[District] = []
        self.stations: list[Station] = []
        self.communities: list[tuple[Community, int, int]] = []  # (community, buildings, floors)
        for district_name, stations in data.DISTRICTS:
            district = District(name=district_name)
            self.districts.append(district)
            for code, station_name, address, communities in stations:
                station = Station(code=code, name=station_name, address=address)
                self.stations.append(station)
                for community_name, buildings, floors in communities:
                    community = Community(district=district, name=community_name, station=station)
                    self.communities.append((community, buildings, floors))
        self.session.add_all(self.districts + self.stations + [c for c, _, _ in self.communities])
        self.session.flush()

    def build_staff(self) -> None:
        password_hash = None
        self.staff: list[Staff] = []
        self.crews = [Crew(name=name, phone=phones.normalise(phone))
                      for name, phone in zip(data.CREWS, data.CREW_PHONES)]
        for crew, station in zip(self.crews, self.stations):
            crew.areas.append(CrewArea(station_id=station.id))
        self.session.add_all(self.crews)
        self.session.flush()
        for username, role, crew_index in _staff_plan(self.rng):
            member = Staff(username=username, name=self.name(), role=role, phone=self.phone(),
                           crew_id=self.crews[crew_index].id if crew_index is not None else None,
                           created_at=self.now - timedelta(days=400))
            if password_hash is None:
                member.set_password(data.DEMO_PASSWORD)
                password_hash = member.password_hash
            # One hash shared by all: the password is the same and hashing is slow on purpose.
            member.password_hash = password_hash
            self.staff.append(member)
        self.leaders = [s for s in self.staff if s.role == Role.LEADER]
        self.leaders[1].on_duty = True
        self.agents = [s for s in self.staff if s.role == Role.AGENT]
        self.admin = self.staff[0]
        self.crew_staff = {crew.id: [s for s in self.staff if s.crew_id == crew.id] for crew in self.crews}
        self.crew_by_station = {station.id: crew for crew, station in zip(self.crews, self.stations)}
        self.session.add_all(self.staff)
        self.session.flush()

    def build_households(self) -> None:
        # Larger estates get more households; high-rises hold more flats per building.
        weights = [b * f for _, b, f in self.communities]
        assigned = self.rng.choices(range(len(self.communities)), weights=weights, k=self.n)
        per_community = Counter(assigned)
        self.households: list[Household] = []
        created = self.now - timedelta(days=465)
        for index, (community, buildings, floors) in enumerate(self.communities):
            district_index = next(i for i, d in enumerate(self.districts) if d.id == community.district_id)
            units = 2 if floors <= 7 else 3
            count = per_community.get(index, 0)
            while buildings * units * floors * 2 < count:  # never run out of flats
                buildings += 1
            flats = self.rng.sample(range(buildings * units * floors * 2), count)
            for seq, flat in enumerate(sorted(flats), start=1):
                building, rest = divmod(flat, units * floors * 2)
                unit, rest = divmod(rest, floors * 2)
                floor, door = divmod(rest, 2)
                area = Decimal(str(round(min(max(self.rng.gauss(88, 21), 42), 185), 2)))
                self.households.append(Household(
                    account_no=f"{district_index + 1}{index + 1:02d}{seq:05d}",
                    district_id=community.district_id, community_id=community.id,
                    building=str(building + 1), unit=str(unit + 1), room=f"{floor + 1}{door + 1:02d}",
                    station_id=community.station_id, area_m2=area, owner_name=self.name(),
                    owner_phone=self.phone(), status=HouseholdStatus.ACTIVE, created_at=created,
                ))
        for h in self.rng.sample(self.households, round(self.n * SUSPENDED_SHARE)):
            h.status = HouseholdStatus.SUSPENDED
        self.active = [h for h in self.households if h.status == HouseholdStatus.ACTIVE]
        self.session.add_all(self.households)
        self.session.flush()
        names = {c.id: (c.district.name, c.name) for c, _, _ in self.communities}
        self.address = {h.id: "{}{}{}号楼{}单元{}室".format(*names[h.community_id], h.building, h.unit, h.room)
                        for h in self.households}

    def build_wechat_users(self) -> None:
        users: list[WechatUser] = []
        # Crew members and leaders receive their work through WeChat; a few agents too.
        for member in self.staff:
            if member.role in (Role.CREW_LEAD, Role.CREW_MEMBER, Role.LEADER) or member.username == "agent1":
                users.append(WechatUser(oa_openid=self.openid("oKx3T"), unionid=self.openid("oZ0a"),
                                        mp_openid=self.openid("o9Pmv"), nickname=member.username, subscribed=True,
                                        subscribed_at=self.now - timedelta(days=300), staff_id=member.id,
                                        created_at=self.now - timedelta(days=300)))
        self.user_by_household: dict[int, WechatUser] = {}
        taken = {u.nickname for u in users}
        bound = self.rng.sample(self.households, round(self.n * BOUND_SHARE))
        previous = None
        for h in bound:
            # A few people pay for two homes (their parents', say) from one WeChat.
            if previous is not None and len(previous.bindings) == 1 and self.rng.random() < 0.05:
                user = previous
            else:
                joined = self.now - timedelta(days=self.rng.uniform(3, 420))
                recent = self.rng.random() < 0.12
                user = WechatUser(
                    oa_openid=self.openid("oKx3T"), unionid=self.openid("oZ0a"),
                    mp_openid=self.openid("o9Pmv") if self.rng.random() < 0.45 else None,
                    nickname=_distinct_nickname(h, taken),  # so the sandbox's chat list says who is who
                    subscribed=self.rng.random() < 0.95, subscribed_at=joined, created_at=joined,
                    last_interaction_at=self.now - timedelta(hours=self.rng.uniform(0.5, 40)) if recent else None,
                )
                if not user.subscribed:
                    user.last_interaction_at = None  # only followers can write to the account
                users.append(user)
            proof = "owner_name" if self.rng.random() < 0.55 else "phone_last4"
            user.bindings.append(HouseholdBinding(household_id=h.id, proof=proof,
                                                  created_at=user.created_at + timedelta(minutes=3)))
            self.user_by_household[h.id] = user
            previous = user
        self.session.add_all(users)
        self.session.flush()
        self.wechat_users = users
        self.user_by_id = {u.id: u for u in users}

    def build_bills(self) -> None:
        today = self.today()
        year = today.year if today.month >= 7 else today.year - 1
        self.past = HeatingSeason(code=f"{year - 1}-{year}", starts_on=date(year - 1, 11, 1),
                                  ends_on=date(year, 3, 31), due_on=date(year - 1, 11, 30),
                                  unit_price_fen=data.PAST_PRICE_FEN)
        self.current = HeatingSeason(code=f"{year}-{year + 1}", starts_on=date(year, 11, 1),
                                     ends_on=date(year + 1, 3, 31), due_on=date(year, 11, 30),
                                     unit_price_fen=data.CURRENT_PRICE_FEN)
        self.session.add_all([self.past, self.current])
        self.session.flush()

        subsidised = {h.id for h in self.rng.sample(self.active, round(len(self.active) * SUBSIDY_SHARE))}
        in_arrears = self.rng.sample(self.active, round(len(self.active) * ARREARS_SHARE))
        both = {h.id for h in in_arrears[: round(len(in_arrears) * BOTH_SEASONS_SHARE)]}
        current_only = {h.id for h in in_arrears} - both

        bills: list[tuple[Bill, bool]] = []
        for h in self.active:
            for season in (self.past, self.current):
                discount = 0
                if h.id in subsidised:
                    discount = bill_amount_fen(min(h.area_m2, Decimal(data.SUBSIDY_AREA_M2)), season.unit_price_fen) // 2
                bill = Bill(household_id=h.id, season_id=season.id, area_m2=h.area_m2,
                            unit_price_fen=season.unit_price_fen, discount_fen=discount,
                            discount_reason=data.SUBSIDY_REASON if discount else None,
                            amount_fen=bill_amount_fen(h.area_m2, season.unit_price_fen, discount),
                            paid_fen=0, late_fee_paid_fen=0, status=BillStatus.UNPAID,
                            created_at=self.local(season.starts_on - timedelta(days=70), 9))
                unpaid = h.id in both or (season is self.current and h.id in current_only)
                bills.append((bill, unpaid))
        self.session.add_all([b for b, _ in bills])
        self.session.flush()

        payments = []
        paid_today = self.paid_today([n for n, (b, unpaid) in enumerate(bills, start=1)
                                      if not unpaid and b.season_id == self.current.id])
        for n, (bill, unpaid) in enumerate(bills, start=1):
            if unpaid:
                continue
            season = self.past if bill.season_id == self.past.id else self.current
            paid_at = self.payment_time(season)
            paid_at = paid_today.get(n, paid_at)
            late_days = (paid_at.astimezone(self.tz).date() - season.due_on).days
            late_fee = _round_fen(Decimal(bill.amount_fen * self.late_fee_bp * late_days) / 10000) if late_days > 0 else 0
            user = self.user_by_household.get(bill.household_id)
            out_trade_no = f"HF{paid_at.astimezone(self.tz):%Y%m%d}{n:08d}"
            # A household nobody bound in WeChat was paid for by someone WeChat Pay knows and
            # we don't (a relative's phone): a payer openid of its own, derived, not drawn.
            payer = user.oa_openid if user else "o9Pmv" + hashlib.sha1(out_trade_no.encode()).hexdigest()[:23]
            payment = Payment(
                out_trade_no=out_trade_no,
                transaction_id=f"42000{self.rng.randrange(10 ** 5):05d}{paid_at.astimezone(self.tz):%Y%m%d}"
                               f"{self.rng.randrange(10 ** 10):010d}",
                wechat_user_id=user.id if user else None, payer_openid=payer,
                amount_fen=bill.amount_fen + late_fee, state=PaymentState.PAID,
                description=f"{season.code}采暖期热费", paid_at=paid_at,
                created_at=paid_at - timedelta(seconds=self.rng.randint(20, 300)),
            )
            payment.items.append(PaymentItem(bill_id=bill.id, principal_fen=bill.amount_fen, late_fee_fen=late_fee))
            bill.paid_fen, bill.late_fee_paid_fen = bill.amount_fen, late_fee
            bill.status, bill.paid_at = BillStatus.PAID, paid_at
            payments.append(payment)
        self.session.add_all(payments)
        self.bills = [b for b, _ in bills]
        self.payments = payments
        self.arrears_households = len(in_arrears)

    def paid_today(self, candidates: list[int]) -> dict[int, datetime]:
        """Late payers of today (今日收费): a few of this season's paid bills were paid since
        local midnight, once the season's sales have opened. Their own random stream, so
        everything else in the demo stays as it was. {bill's position: paid_at}."""
        rng = random.Random(RANDOM_SEED + 29)
        day_start = self.local(self.today())
        latest = self.now - timedelta(minutes=2)
        if latest <= day_start or self.local(self.current.starts_on - timedelta(days=61), 8) >= day_start \
                or not candidates:
            return {}
        chosen = rng.sample(candidates, min(len(candidates), max(3, round(len(candidates) * PAID_TODAY_SHARE))))
        return {n: day_start + timedelta(seconds=rng.uniform(0, (latest - day_start).total_seconds()))
                for n in chosen}

    def payment_time(self, season: HeatingSeason) -> datetime:
        """Most pay in the autumn before the due date; some late payers in winter."""
        opens = self.local(season.starts_on - timedelta(days=61), 8)
        due = self.local(season.due_on, 23, 59)
        latest = min(self.now - timedelta(minutes=10), self.local(season.ends_on, 17))
        opens = min(opens, latest - timedelta(days=1))  # seeding before the sales period opens
        if self.rng.random() < 0.9 or latest <= due:
            return self.between(opens, min(due, latest))
        return self.between(due, latest)

    def build_faq(self) -> None:
        """The knowledge base ships with the migrations (app/reference/knowledge_base.py): the
        demo only gives its entries a history of use."""
        entries = list(db.session.scalars(select(FaqEntry).where(FaqEntry.hits == 0)))
        for entry in entries:
            entry.hits = self.rng.randint(1, 400)
        self.faq_count = db.session.scalar(select(func.count(FaqEntry.id)))

    # ------------------------------------------------------------------ tickets
    def build_tickets(self) -> None:
        self.sla: dict[tuple[str, str], tuple[int, int]] = {}
        total = max(20, round(TICKETS_PER_2000 * self.n / DEFAULT_HOUSEHOLDS))
        self.outage_community = self.communities[7][0]  # 锦绣家园: the burst pipe of today
        waiting = self.awaiting_rating_spec()
        specs = [self.ticket_spec() for _ in range(total - 1 - (waiting is not None))]
        specs.append(self.burst_pipe_spec())
        specs.sort(key=lambda s: s["created_at"])
        self.force_every_state(specs)
        if waiting is not None:  # after the state shuffle: it stays closed
            specs.append(waiting)
            specs.sort(key=lambda s: s["created_at"])

        tickets = []
        per_day: Counter[str] = Counter()
        phone_seq = 0
        for spec in specs:
            day = spec["created_at"].astimezone(self.tz).strftime("%Y%m%d")
            per_day[day] += 1
            spec["number"] = f"GD{day}-{per_day[day]:04d}"
            if spec["source"] == TicketSource.PHONE:
                phone_seq += 1
                spec["external_id"] = f"HJ{day}{phone_seq:05d}"
            tickets.append(self.make_ticket(spec))
            if spec.get("awaiting_rating"):
                self.leave_unrated(tickets[-1])
        self.session.add_all(tickets)
        for day, value in sorted(per_day.items()):
            counter = db.session.get(TicketCounter, day)
            if counter is None:
                self.session.add(TicketCounter(day=day, value=value))
            else:
                counter.value = max(counter.value, value)
        self.tickets = tickets

    def awaiting_rating_spec(self) -> dict | None:
        """The featured resident of the demo guide (刘秀英 on the default seed) has a repair
        closed yesterday that still awaits their rating: send 5 (or 进度) in their chat."""
        self.session.flush()
        found = bound_resident_in_arrears()
        if found is None:
            return None
        return {"created_at": self.now - timedelta(hours=30), "type": TicketType.REPAIR,
                "category": TicketCategory.RADIATOR, "priority": Priority.NORMAL,
                "source": TicketSource.OFFICIAL_ACCOUNT, "household": found[1], "state": TicketState.CLOSED,
                "description": "客厅暖气片上热下凉，放气后还是不热", "awaiting_rating": True}

    @staticmethod
    def leave_unrated(t: Ticket) -> None:
        t.rating = t.rating_comment = t.rated_at = t.visit_result = t.visited_at = None
        t.events = [e for e in t.events if e.action not in ("rated", "visited")]

    def ticket_time(self) -> datetime:
        """A call time: busier once heating has started, mostly in waking hours."""
        today = self.today()
        start = self.current.starts_on
        days = [today - timedelta(days=d) for d in range(HISTORY_DAYS)]

        def weight(day: date) -> float:
            if day < start - timedelta(days=20):
                return 1
            if day < start:
                return 2.5          # water filling and pressure tests: leaks
            if day < start + timedelta(days=7):
                return 7            # the first cold week
            return 4.5

        hours = [1, 0.5, 0.3, 0.3, 0.5, 1, 3, 8, 9, 8, 6, 5, 4, 5, 5, 5, 6, 8, 9, 8, 7, 5, 3, 2]
        while True:
            day = self.rng.choices(days, weights=[weight(d) for d in days])[0]
            hour = self.rng.choices(range(24), weights=hours)[0]
            moment = self.local(day, hour, self.rng.randrange(60)) + timedelta(seconds=self.rng.randrange(60))
            if moment < self.now - timedelta(minutes=5):
                return moment

    def ticket_spec(self) -> dict:
        rng = self.rng
        created = self.ticket_time()
        heating = created.astimezone(self.tz).date() >= self.current.starts_on
        ttype = _weighted(rng, {TicketType.REPAIR: 70, TicketType.COMPLAINT: 10, TicketType.INQUIRY: 10,
                                TicketType.SUGGESTION: 3, TicketType.HELP: 5, TicketType.REPORT: 2})
        C = TicketCategory
        if ttype == TicketType.REPAIR:
            table = ({C.NO_HEAT: 30, C.LOW_TEMPERATURE: 30, C.LEAK: 14, C.RADIATOR: 8, C.VALVE: 7,
                      C.NOISE: 6, C.BURST_PIPE: 2, C.OTHER: 3} if heating
                     else {C.LEAK: 35, C.VALVE: 30, C.RADIATOR: 25, C.OTHER: 10})
        elif ttype == TicketType.COMPLAINT:
            table = ({C.LOW_TEMPERATURE: 40, C.SERVICE: 35, C.NO_HEAT: 15, C.BILLING: 10} if heating
                     else {C.SERVICE: 50, C.BILLING: 50})
        elif ttype == TicketType.HELP:
            table = {C.NO_HEAT: 40, C.LEAK: 30, C.OTHER: 30} if heating else {C.LEAK: 60, C.OTHER: 40}
        elif ttype == TicketType.INQUIRY:
            table = {C.BILLING: 60, C.OTHER: 40}
        elif ttype == TicketType.SUGGESTION:
            table = {C.SERVICE: 30, C.OTHER: 70}
        else:
            table = {C.OTHER: 1}
        category = _weighted(rng, table)
        if category in C.EMERGENCY:
            priority = Priority.EMERGENCY
        elif category == C.NO_HEAT or ttype in (TicketType.COMPLAINT, TicketType.HELP):
            priority = Priority.URGENT if rng.random() < 0.3 else Priority.NORMAL
        else:
            priority = Priority.NORMAL
        source = _weighted(rng, {TicketSource.PHONE: 55, TicketSource.OFFICIAL_ACCOUNT: 20,
                                 TicketSource.MINI_PROGRAM: 15, TicketSource.STAFF: 10})
        household = None
        if source in (TicketSource.OFFICIAL_ACCOUNT, TicketSource.MINI_PROGRAM):
            household = rng.choice(self.bound_active_households())
        elif ttype in (TicketType.REPAIR, TicketType.COMPLAINT, TicketType.HELP) or rng.random() < 0.85:
            household = rng.choice(self.active)
        return {"created_at": created, "type": ttype, "category": category, "priority": priority,
                "source": source, "household": household, "state": None}

    def bound_active_households(self) -> list[Household]:
        if not hasattr(self, "_bound_active"):
            self._bound_active = [h for h in self.active if h.id in self.user_by_household]
        return self._bound_active

    def burst_pipe_spec(self) -> dict:
        residents = [h for h in self.active if h.community_id == self.outage_community.id] or self.active
        return {"created_at": self.now - timedelta(hours=3, minutes=25), "type": TicketType.REPAIR,
                "category": TicketCategory.BURST_PIPE, "priority": Priority.EMERGENCY,
                "source": TicketSource.PHONE, "household": self.rng.choice(residents),
                "state": TicketState.IN_PROGRESS, "description": data.DESCRIPTIONS["burst_pipe"][2]}

    def force_every_state(self, specs: list[dict]) -> None:
        """Pick states by age; then make sure a small demo still shows every state once."""
        for spec in specs:
            if spec["state"] is None:
                spec["state"] = self.state_for(spec)
        present = {s["state"] for s in specs}
        missing = [s for s in TicketState.ALL if s not in present]
        crew_path = [s for s in reversed(specs) if s["type"] not in TicketType.DIRECT_CLOSE
                     and s["category"] != TicketCategory.BURST_PIPE]
        counts = Counter(s["state"] for s in specs)
        for state in missing:
            # Take a ticket whose state others share, so no state is lost in the exchange.
            spec = next((s for s in crew_path if counts[s["state"]] > 1), None)
            if spec is None:
                break
            counts[spec["state"]] -= 1
            counts[state] += 1
            spec["state"] = state

    def state_for(self, spec: dict) -> str:
        S = TicketState
        age_h = (self.now - spec["created_at"]).total_seconds() / 3600
        if spec["type"] in TicketType.DIRECT_CLOSE:
            table = ({S.NEW: 60, S.CLOSED: 40} if age_h < 2 else
                     {S.NEW: 15, S.CLOSED: 80, S.CANCELLED: 5} if age_h < 24 else {S.CLOSED: 95, S.CANCELLED: 5})
        elif age_h < 2:
            table = {S.NEW: 25, S.ASSIGNED: 30, S.ACCEPTED: 25, S.IN_PROGRESS: 15, S.REPLIED: 5}
        elif age_h < 24:
            table = {S.NEW: 3, S.ASSIGNED: 7, S.ACCEPTED: 10, S.IN_PROGRESS: 25, S.REPLIED: 25, S.CLOSED: 25,
                     S.CANCELLED: 5}
        elif age_h < 72:
            table = {S.ACCEPTED: 1, S.IN_PROGRESS: 5, S.REPLIED: 8, S.CLOSED: 81, S.CANCELLED: 5}
        else:
            table = {S.IN_PROGRESS: 1, S.CLOSED: 94, S.CANCELLED: 5}
        return _weighted(self.rng, table)

    def sla_for(self, ttype: str, priority: str) -> tuple[int, int]:
        """(respond, finish) minutes from the SLA table, looked up once per type and priority."""
        if (ttype, priority) not in self.sla:
            policy = policy_for(ttype, priority)
            self.sla[ttype, priority] = (policy.respond_minutes, policy.finish_minutes)
        return self.sla[ttype, priority]

    def describe(self, spec: dict) -> str:
        rng = self.rng
        if spec.get("description"):
            return spec["description"]
        if spec["type"] == TicketType.INQUIRY:
            question, spec["answer"] = rng.choice(data.INQUIRIES[spec["category"]])
            spec["answer"] = spec["answer"].format(price=f"{self.current.unit_price_fen / 100:.2f}")
            return question
        texts = data.TYPE_DESCRIPTIONS.get(spec["type"]) or data.DESCRIPTIONS[spec["category"]]
        area = spec["household"].area_m2 if spec["household"] else 80
        return rng.choice(texts).format(temp=rng.randint(11, 16), room=rng.choice(data.ROOMS), area=area)

    def make_ticket(self, spec: dict) -> Ticket:
        rng = self.rng
        S = TicketState
        h: Household | None = spec["household"]
        ttype, state, created = spec["type"], spec["state"], spec["created_at"]
        respond, finish = self.sla_for(ttype, spec["priority"])
        agent = rng.choice(self.agents)
        direct = ttype in TicketType.DIRECT_CLOSE
        crew = None if direct else self.crew_by_station.get(h.station_id if h else None) or rng.choice(self.crews)
        assignee = None
        if crew is not None and state not in (S.NEW,) and not (state == S.CANCELLED and rng.random() < 0.5):
            team = self.crew_staff[crew.id]
            assignee = team[0] if rng.random() < 0.25 else rng.choice(team[1:])
        user = self.user_by_household.get(h.id) if h else None
        caller_name = h.owner_name if h and rng.random() < 0.8 else (
            (h.owner_name[0] if h else self.name()[0]) + rng.choice(["女士", "先生"]))
        ticket = Ticket(
            number=spec["number"], source=spec["source"], type=ttype, category=spec["category"],
            priority=spec["priority"], state=state, household_id=h.id if h else None,
            reporter_id=user.id if user and spec["source"] in (TicketSource.OFFICIAL_ACCOUNT,
                                                               TicketSource.MINI_PROGRAM) else None,
            caller_phone=(h.owner_phone if rng.random() < 0.85 else self.phone()) if h else self.phone(),
            caller_name=caller_name, address=self.address[h.id] if h else None,
            description=self.describe(spec), external_id=spec.get("external_id"),
            crew_id=crew.id if assignee else None,
            assignee_id=assignee.id if assignee else None,
            created_by_id=agent.id if spec["source"] == TicketSource.STAFF else None,
            respond_by=created + timedelta(minutes=respond), finish_by=created + timedelta(minutes=finish),
            created_at=created,
        )
        self.add_timeline(ticket, spec, agent, crew, assignee, user, respond, finish)
        return ticket

    def add_timeline(self, t: Ticket, spec: dict, agent: Staff, crew: Crew | None, assignee: Staff | None,
                     user: WechatUser | None, respond: int, finish: int) -> None:
        rng = self.rng
        S = TicketState
        created = t.created_at
        steps: list[tuple[str, str | None, str | None, float]] = []  # (action, from, to, minutes after created)
        if t.type in TicketType.DIRECT_CLOSE:
            if t.state == S.CLOSED:
                steps.append(("closed", S.NEW, S.CLOSED, rng.uniform(5, finish * 0.8)))
            elif t.state == S.CANCELLED:
                steps.append(("cancelled", S.NEW, S.CANCELLED, rng.uniform(10, 300)))
        else:
            path = [S.NEW, S.ASSIGNED, S.ACCEPTED, S.IN_PROGRESS, S.REPLIED, S.CLOSED]
            fast = t.priority == Priority.EMERGENCY
            late = rng.random() < 0.08
            offsets = {S.ASSIGNED: rng.uniform(1, 5) if fast else rng.uniform(2, 15)}
            offsets[S.ACCEPTED] = offsets[S.ASSIGNED] + respond * (rng.uniform(1.0, 2.5) if rng.random() < 0.1
                                                                  else rng.uniform(0.1, 0.9))
            offsets[S.IN_PROGRESS] = offsets[S.ACCEPTED] + (rng.uniform(5, 30) if fast else rng.uniform(20, 90))
            offsets[S.REPLIED] = max(offsets[S.IN_PROGRESS] + 15,
                                     finish * (rng.uniform(1.05, 2.0) if late else rng.uniform(0.1, 0.55)))
            offsets[S.CLOSED] = self.office_minutes(created, offsets[S.REPLIED] + rng.uniform(10, 120))
            if t.state == S.CANCELLED:
                upto = S.ASSIGNED if t.assignee_id else S.NEW
                target = path[: path.index(upto) + 1]
                steps = [(_ACTION[s], prev, s, offsets[s]) for prev, s in zip(target, target[1:])]
                steps.append(("cancelled", upto, S.CANCELLED,
                              (steps[-1][3] if steps else 0) + rng.uniform(10, 300)))
            else:
                target = path[: path.index(t.state) + 1]
                steps = [(_ACTION[s], prev, s, offsets[s]) for prev, s in zip(target, target[1:])]
        # Everything must have happened before now: squeeze the timeline of a recent ticket.
        room = (self.now - timedelta(minutes=1) - created).total_seconds() / 60
        if steps and steps[-1][3] > room:
            scale = room * rng.uniform(0.5, 0.95) / steps[-1][3]
            steps = [(a, f, s, m * scale) for a, f, s, m in steps]

        creator_kind = {TicketSource.PHONE: "phone", TicketSource.STAFF: "staff"}.get(t.source, "resident")
        t.events.append(TicketEvent(
            action="created", from_state=None, to_state=S.NEW, actor_kind=creator_kind,
            actor_staff_id=agent.id if creator_kind == "staff" else None,
            actor_user_id=user.id if creator_kind == "resident" and user else None,
            actor_name=agent.name if creator_kind != "resident" else (user.nickname if user else None) or "用户",
            note=t.description, data={"source": t.source}, created_at=created))
        last = created
        for action, before, after, minutes in steps:
            at = created + timedelta(minutes=minutes)
            actor = assignee if after in (S.ACCEPTED, S.IN_PROGRESS, S.REPLIED) else agent
            note, extra = None, None
            if after == S.ASSIGNED:
                note = f"派单至{crew.name}，由{assignee.name}处理"
                extra = {"from": {"crew_id": None, "staff_id": None},
                         "to": {"crew_id": crew.id, "staff_id": assignee.id}}
            elif after == S.ACCEPTED:
                note = rng.choice(data.ACCEPT_NOTES)
                t.accepted_at = at
            elif after == S.IN_PROGRESS:
                note = rng.choice(data.START_NOTES)
            elif after == S.REPLIED:
                t.reply = note = rng.choice(data.REPLIES[t.category]).format(temp2=rng.randint(18, 22))
                t.replied_at = at
            elif after == S.CLOSED:
                if t.reply:
                    t.final_answer = data.FINAL_ANSWER.format(crew=crew.name, reply=t.reply, hotline=data.HOTLINE)
                else:
                    t.final_answer = spec.get("answer") or data.SUGGESTION_ANSWER
                    t.accepted_at = at
                note = t.final_answer
                t.closed_at = at
            elif after == S.CANCELLED:
                note = rng.choice(data.CANCEL_NOTES)
                t.closed_at = at
            t.events.append(TicketEvent(action=action, from_state=before, to_state=after, actor_kind="staff",
                                        actor_staff_id=actor.id, actor_name=actor.name, note=note, data=extra,
                                        created_at=at))
            last = at
        if t.state == S.CLOSED:
            last = self.add_rating_and_visit(t, agent) or last
        t.updated_at = last

    def office_minutes(self, start: datetime, minutes: float) -> float:
        """Minutes after start, moved into customer service's hours (8:00–21:00 local)."""
        at = (start + timedelta(minutes=minutes)).astimezone(self.tz)
        if at.hour >= 21:
            at = (at + timedelta(days=1)).replace(hour=8, minute=0) + timedelta(minutes=self.rng.randrange(150))
        elif at.hour < 8:
            at = at.replace(hour=8, minute=0) + timedelta(minutes=self.rng.randrange(150))
        return (at - start).total_seconds() / 60

    def add_rating_and_visit(self, t: Ticket, agent: Staff) -> datetime | None:
        """The reporting resident may rate from WeChat; customer service calls back (回访)."""
        rng = self.rng
        S = TicketState
        events = []
        reporter = self.user_by_id.get(t.reporter_id)
        rated_at = t.closed_at + timedelta(minutes=rng.uniform(20, 1800))
        if reporter is not None and rng.random() < 0.8 and rated_at < self.now:
            t.rating = _weighted(rng, {5: 60, 4: 22, 3: 9, 2: 5, 1: 4})
            t.rating_comment = rng.choice(data.RATING_COMMENTS[t.rating]) or None
            t.rated_at = rated_at
            events.append(TicketEvent(action="rated", from_state=S.CLOSED, to_state=S.CLOSED, actor_kind="resident",
                                      actor_user_id=reporter.id, actor_name=reporter.nickname or "用户",
                                      note=t.rating_comment, data={"rating": t.rating}, created_at=rated_at))
        visited_at = created = t.closed_at + timedelta(minutes=rng.uniform(60, 2880))
        visited_at = created + timedelta(minutes=self.office_minutes(created, 0))
        if visited_at < self.now and rng.random() < 0.9:
            satisfied = t.rating is None or t.rating >= 3
            if t.type in TicketType.DIRECT_CLOSE:
                t.visit_result = data.VISIT_ANSWERED
            elif t.rating is None or t.rating >= 4:
                t.visit_result = rng.choice(data.VISIT_RESULTS[:3])
            else:
                t.visit_result = data.VISIT_RESULTS[3 if t.rating == 3 else 4]
            t.visited_at = visited_at
            events.append(TicketEvent(action="visited", from_state=S.CLOSED, to_state=S.CLOSED, actor_kind="staff",
                                      actor_staff_id=agent.id, actor_name=agent.name, note=t.visit_result,
                                      data={"satisfied": satisfied}, created_at=visited_at))
        events.sort(key=lambda e: e.created_at)
        t.events.extend(events)
        return events[-1].created_at if events else None

    # ------------------------------------------------------------------ outages, announcements
    def build_outages_and_announcements(self) -> None:
        rng = self.rng
        community = self.outage_community
        hours = 8
        started = self.now - timedelta(hours=3)
        active = Outage(
            title=data.OUTAGE_ACTIVE["title"].format(community=community.name), kind=OutageKind.UNPLANNED,
            reason=data.OUTAGE_ACTIVE["reason"].format(community=community.name, hours=hours),
            status=OutageStatus.ACTIVE, starts_at=started, expected_end_at=started + timedelta(hours=hours),
            created_by_id=self.agents[0].id, created_at=started, updated_at=started,
        )
        active.areas.append(OutageArea(community_id=community.id))

        station = self.stations[4]
        day = self.today() + timedelta(days=3)
        planned = Outage(
            title=data.OUTAGE_PLANNED["title"].format(station=station.name), kind=OutageKind.PLANNED,
            reason=data.OUTAGE_PLANNED["reason"].format(station=station.name, day=f"{day.month}月{day.day}日"),
            status=OutageStatus.SCHEDULED, starts_at=self.local(day, 8), expected_end_at=self.local(day, 16),
            created_by_id=self.agents[1].id, created_at=self.now - timedelta(hours=20),
            updated_at=self.now - timedelta(hours=20),
        )
        planned.areas.append(OutageArea(station_id=station.id))

        old_community = self.communities[0][0]
        old_day = self.today() - timedelta(days=10)
        restored = Outage(
            title=data.OUTAGE_RESTORED["title"].format(community=old_community.name), kind=OutageKind.UNPLANNED,
            reason=data.OUTAGE_RESTORED["reason"].format(community=old_community.name, building=5),
            status=OutageStatus.RESTORED, starts_at=self.local(old_day, 9), expected_end_at=self.local(old_day, 15),
            actual_end_at=self.local(old_day, 14, 30), created_by_id=self.agents[2].id,
            created_at=self.local(old_day, 8, 40), updated_at=self.local(old_day, 14, 30),
        )
        restored.areas.append(OutageArea(community_id=old_community.id, building="5"))
        self.outages = [active, planned, restored]
        self.session.add_all(self.outages)
        self.session.flush()

        season = self.current
        announcements = []
        sent_times = [min(self.local(season.starts_on - timedelta(days=72), 10), self.now - timedelta(days=2)),
                      min(self.local(season.starts_on - timedelta(days=4), 10), self.now - timedelta(days=1))]
        templates = [data.ANNOUNCEMENTS[1], data.ANNOUNCEMENTS[0]]
        for (title, body), at in zip(templates, sent_times):
            announcements.append(Announcement(
                title=title.format(season=season.code),
                body=body.format(season=season.code, company=data.COMPANY, hotline=data.HOTLINE,
                                 price=f"{season.unit_price_fen / 100:.2f}"),
                category="notice", audience=Audience.ALL, status=AnnouncementStatus.DONE,
                scheduled_at=at, created_by_id=self.agents[0].id, created_at=at - timedelta(hours=2),
                started_at=at, finished_at=at + timedelta(minutes=rng.randint(8, 25)),
            ))
        announcements.append(Announcement(
            title="停热通知：" + restored.title, body=restored.reason, category="outage", audience=Audience.AREA,
            audience_filter={"buildings": [{"community_id": old_community.id, "building": "5"}]},
            status=AnnouncementStatus.DONE, scheduled_at=restored.created_at, outage_id=restored.id,
            created_by_id=self.agents[2].id, created_at=restored.created_at, started_at=restored.created_at,
            finished_at=restored.created_at + timedelta(minutes=3),
        ))
        self.session.add_all(announcements)
        self.session.flush()
        rng = random.Random(RANDOM_SEED + 31)  # its own stream: the rest of the demo stays as it was
        self.add_deliveries(announcements[0], rng, busy=0)
        self.add_deliveries(announcements[1], rng, busy=BUSY_SHARE)
        self.announcements = announcements

    def add_deliveries(self, ann: Announcement, rng: random.Random, *, busy: float) -> None:
        """What the broadcast left of an announcement to 全部用户: sent as a template message to
        followers; people who unfollowed skipped — WeChat answered 43004 (未关注) when we still
        thought they followed, or no channel was left once we knew; with ``busy``, a share of
        followers failed (WeChat busy past every retry, −1), so 重试失败 has work: the sandbox
        knows them as followers, so a retry reaches them."""
        sent_at = ann.started_at
        rows = []
        for user in self.wechat_users:
            if not user.bindings:
                continue
            row = Delivery(announcement_id=ann.id, wechat_user_id=user.id, attempts=1)
            if not user.subscribed:
                answered = rng.random() < 0.5
                row.status, row.channel = DeliveryStatus.SKIPPED, "template" if answered else None
                row.errcode, row.reason = (NOT_FOLLOWING, REASONS[NOT_FOLLOWING]) if answered \
                    else (None, REASONS["no_channel"])
            elif rng.random() < busy:
                row.status, row.errcode, row.reason, row.attempts = DeliveryStatus.FAILED, -1, \
                    REASONS[-1], 5
            else:
                sent_at = sent_at + timedelta(milliseconds=rng.randint(5, 40))
                row.status, row.channel, row.sent_at = DeliveryStatus.SENT, "template", sent_at
                row.wechat_msgid = str(rng.randrange(10 ** 18, 10 ** 19))
            rows.append(row)
        self.session.add_all(rows)

    # ------------------------------------------------------------------ the live day
    def build_live_day(self) -> None:
        """What a leader sees on opening the dashboard: crews' last positions near their
        stations and today's calls (answered, missed, a few ringing). A separate random
        stream, so the rest of the demo stays as it was."""
        rng = random.Random(RANDOM_SEED + 17)
        names = {st.id: [c.name for c, _, _ in self.communities if c.station_id == st.id] for st in self.stations}
        for crew, station in zip(self.crews, self.stations):
            lat, lng = data.STATION_POSITIONS.get(station.code, (41.80, 123.40))
            for member in self.crew_staff[crew.id]:
                member.last_latitude = round(lat + rng.uniform(-0.007, 0.007), 6)
                member.last_longitude = round(lng + rng.uniform(-0.009, 0.009), 6)
                place = rng.choice(names[station.id] or [station.name])
                member.last_location_label = f"{place}{rng.randint(1, 12)}号楼附近"
                member.last_located_at = self.now - timedelta(minutes=rng.randint(3, 150))
        calls = []
        day_start = self.local(self.today())
        phone_today = [t for t in self.tickets if t.source == TicketSource.PHONE and t.created_at >= day_start]
        for n, t in enumerate(phone_today, start=1):
            calls.append(self.answered_call(rng, t, f"CALL{t.external_id or n}", f"CALL{n:04d}"))
        # Earlier phone tickets came from calls too: their records (with recordings) are what
        # the console's customer page shows under 来电记录.
        phone_before = [t for t in self.tickets if t.source == TicketSource.PHONE
                        and day_start - timedelta(days=14) <= t.created_at < day_start]
        for n, t in enumerate(phone_before, start=1):
            calls.append(self.answered_call(rng, t, f"CALLP{n:05d}", f"CALLP{n:05d}"))
        span = max((self.now - day_start).total_seconds(), 60)
        for n in range(round(len(phone_today) * 1.6) + 6):     # inquiries answered on the phone, and missed calls
            started = day_start + timedelta(seconds=rng.uniform(0, span - 30))
            missed = rng.random() < 0.12
            answered = None if missed else started + timedelta(seconds=rng.randint(4, 60))
            ended = (answered or started) + timedelta(seconds=rng.randint(20, 300) if answered else rng.randint(15, 50))
            if ended > self.now:
                continue
            calls.append(CallLog(call_id=f"CALLQ{n:04d}", caller_phone=self.phone(), status=CallStatus.MISSED if missed
                                 else CallStatus.HANGUP, agent=None if missed else rng.choice(data.CALL_AGENTS),
                                 started_at=started, answered_at=answered, ended_at=ended,
                                 duration_s=int((ended - answered).total_seconds()) if answered else None,
                                 last_event_at=ended, created_at=started))
        for n in range(2):                                      # waiting in the queue right now
            started = self.now - timedelta(seconds=rng.randint(15, 90))
            calls.append(CallLog(call_id=f"CALLR{n}", caller_phone=self.phone(), status=CallStatus.RINGING,
                                 started_at=started, last_event_at=started, created_at=started))
        self.session.add_all(calls)
        self.calls = calls

    def answered_call(self, rng: random.Random, t: Ticket, call_id: str, recording: str) -> CallLog:
        """The answered phone call a phone ticket came from, with its recording."""
        started = t.created_at - timedelta(seconds=rng.randint(60, 300))
        answered = started + timedelta(seconds=rng.randint(4, 45))
        ended = answered + timedelta(seconds=rng.randint(60, 420))
        return CallLog(call_id=call_id, caller_phone=t.caller_phone or self.phone(), agent=rng.choice(data.CALL_AGENTS),
                       status=CallStatus.HANGUP, started_at=started, answered_at=answered, ended_at=ended,
                       duration_s=int((ended - answered).total_seconds()), household_id=t.household_id,
                       ticket_id=t.id, last_event_at=ended, created_at=started,
                       recording_url=f"{RECORDING_BASE}/{started.strftime('%Y%m%d')}/{recording}.mp3")

    # ------------------------------------------------------------------ 疑似停热
    def build_suspected_outage(self) -> None:
        """One station's residents report 不热 within the last half hour and no outage is
        recorded there: enough reports for a suspected outage (``clusters.threshold()`` and
        two more), so a fresh demo shows 疑似停热 on the console and the dashboard and staff
        can turn it into an outage. The open cluster is the row ``clusters.note_heat_report``
        would have opened at the threshold-th report. Its own random stream."""
        rng = random.Random(RANDOM_SEED + 37)
        station = self.stations[CLUSTER_STATION]
        homes = [h for h in self.active if h.station_id == station.id]
        wanted = clusters.threshold() + 2
        if len(homes) < wanted:
            return
        chosen = rng.sample(homes, wanted)
        first = self.now - timedelta(minutes=24)
        step = (self.now - timedelta(minutes=1) - first) / wanted
        self.session.flush()
        day = self.now.astimezone(self.tz).strftime("%Y%m%d")
        counter = db.session.get(TicketCounter, day) or TicketCounter(day=day, value=0)
        self.session.add(counter)
        main_rng, self.rng = self.rng, rng  # make_ticket draws from self.rng
        reports, calls = [], []
        try:
            for k, h in enumerate(chosen):
                user = self.user_by_household.get(h.id)
                counter.value += 1
                spec = {"created_at": first + step * k + timedelta(seconds=rng.randint(0, 40)),
                        "type": TicketType.REPAIR, "category": TicketCategory.NO_HEAT,
                        "priority": Priority.URGENT if rng.random() < 0.3 else Priority.NORMAL,
                        "source": TicketSource.OFFICIAL_ACCOUNT if user else TicketSource.PHONE, "household": h,
                        "state": TicketState.ASSIGNED if rng.random() < 0.6 else TicketState.NEW,
                        "description": rng.choice(data.CLUSTER_REPORTS), "number": f"GD{day}-{counter.value:04d}"}
                if spec["source"] == TicketSource.PHONE:
                    spec["external_id"] = f"HJ{day}C{k + 1:04d}"
                reports.append(self.make_ticket(spec))
        finally:
            self.rng = main_rng
        self.session.add_all(reports)
        self.session.flush()
        for t in reports:
            if t.source == TicketSource.PHONE:
                calls.append(self.answered_call(rng, t, f"CALL{t.external_id}", f"CALL{t.external_id}"))
        self.session.add_all(calls)
        self.tickets += reports
        self.calls += calls
        there = {h.id for h in homes}
        times = sorted(t.created_at for t in self.tickets if t.household_id in there
                       and t.category in clusters.HEAT and t.state != TicketState.CANCELLED and t.created_at >= first)
        key = f"station:{station.id}"
        self.cluster = OutageCluster(scope=key, open_key=key, station_id=station.id, status=ClusterStatus.OPEN,
                                     report_count=len(times), first_report_at=times[0], last_report_at=times[-1],
                                     created_at=times[clusters.threshold() - 1])
        self.session.add(self.cluster)

    # ------------------------------------------------------------------ summary
    def summary(self) -> SeedResult:
        open_tickets = [t for t in self.tickets if t.state in TicketState.OPEN]
        overdue = [t for t in open_tickets if t.finish_by < self.now]
        counts = {
            "districts": len(self.districts), "communities": len(self.communities),
            "stations": len(self.stations), "households": len(self.households),
            "suspended": len(self.households) - len(self.active), "bills": len(self.bills),
            "payments": len(self.payments), "arrears_households": self.arrears_households,
            "wechat_users": len(self.wechat_users), "bound_households": len(self.user_by_household),
            "staff": len(self.staff), "crews": len(self.crews), "faq": self.faq_count,
            "tickets": len(self.tickets), "open_tickets": len(open_tickets), "overdue_tickets": len(overdue),
            "outages": len(self.outages), "announcements": len(self.announcements),
        }
        logins = []
        for wanted in ("admin", "leader1", "leader2", "agent1", "crew1_lead", "crew1_m1"):
            member = next(s for s in self.staff if s.username == wanted)
            role = Role.LABELS[member.role] + ("，值班" if member.on_duty else "")
            logins.append((member.username, member.name, role))
        return SeedResult("created", f"已创建演示城市：{data.COMPANY}。Demo city created.", counts,
                          self.arrears_households / len(self.active), logins)


_ACTION = {
    TicketState.ASSIGNED: "assigned", TicketState.ACCEPTED: "accepted", TicketState.IN_PROGRESS: "started",
    TicketState.REPLIED: "replied", TicketState.CLOSED: "closed",
}
